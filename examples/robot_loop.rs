//! A differential-drive robot in a simulated room: depth perception (row-streamed separable
//! network) and keyword commands feed a fixed-rate control loop through latest-value slots.
//!
//! ```text
//! cargo run --release --example robot_loop                    # simulated clock, deterministic
//! cargo run --release --example robot_loop -- --realtime      # threads, wall clock
//! cargo run --release --example robot_loop -- --seed 4 --rate 1000 --plot robot.png
//! ```
//! The commands are a script ("go", a left turn, "go" again, "stop"); `sepstream robot --sim`
//! is the full command-line version.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use sepstream::vision::perception::DepthPerception;
use sepstream::vision::rt::{run_realtime, scripted_feed, RtConfig};
use sepstream::vision::sim::{parse_command_script, pose_facing_obstacle, run_sim, SimConfig};
use sepstream::vision::{DepthNoise, DiffDrive, SimDepthCamera, World, WorldParams};

fn main() -> anyhow::Result<()> {
    let (mut seed, mut rate, mut realtime, mut plot) = (1u64, 200.0f64, false, None::<PathBuf>);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seed = args.next().context("--seed N")?.parse()?,
            "--rate" => rate = args.next().context("--rate HZ")?.parse()?,
            "--realtime" => realtime = true,
            "--plot" => plot = Some(args.next().context("--plot FILE")?.into()),
            other => {
                bail!("unknown argument {other}; use --seed N --rate HZ --realtime --plot FILE")
            }
        }
    }
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/depth_sectors.toml");
    let drive = DiffDrive::default();
    let world = Arc::new(World::random(&WorldParams::default(), seed));
    let start = pose_facing_obstacle(&world, &drive, seed, 1.0, 3.0).context("no start pose")?;
    let camera = SimDepthCamera::default_robot(DepthNoise::default(), seed);
    let perception = DepthPerception::load(&spec, camera.intrinsics())?;
    let commands = parse_command_script("0.5:go,7:left,9:go,18:stop")?;
    let log = if realtime {
        let cfg = RtConfig {
            control_hz: rate,
            duration: 20.0,
            ..RtConfig::default()
        };
        run_realtime(
            &cfg,
            world.clone(),
            start,
            camera,
            perception,
            Some(scripted_feed(commands)),
        )?
        .log
    } else {
        let cfg = SimConfig {
            control_hz: rate,
            duration: 20.0,
            ..SimConfig::default()
        };
        let mut perception = perception;
        run_sim(
            &cfg,
            world.clone(),
            start,
            &commands,
            &camera,
            &mut perception,
        )?
    };
    for m in &log.marks {
        println!(
            "{:>7.3} s  {:<5} (arrived {:.3} s)",
            m.t,
            m.command.name(),
            m.arrival
        );
    }
    println!("{}", log.summary());
    if let Some(p) = plot {
        sepstream::vision::plot::plot_run(
            &world,
            &log,
            &format!("robot_loop seed {seed}"),
            &p,
            (900, 700),
            true,
        )?;
        println!("plot: {}", p.display());
    }
    Ok(())
}
