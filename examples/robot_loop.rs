//! A differential-drive robot in a simulated room: depth perception (row-streamed separable
//! network) and keyword commands feed a fixed-rate control loop through latest-value slots.
//!
//! ```text
//! cargo run --release --example robot_loop                    # simulated clock, deterministic
//! cargo run --release --example robot_loop -- --realtime      # threads, wall clock
//! cargo run --release --example robot_loop -- --seed 4 --rate 1000 --plot robot.png
//! ```
//! The commands are a script ("go", a left turn, "go" again, "stop"); `sepstream robot --sim`
//! is the full command-line version; both set the robot up and run it with
//! `sepstream_pipeline::voice_robot`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use sepstream::nn::Network;
use sepstream::pipeline::voice_robot::{RobotCommands, RobotRun, RobotScene};
use sepstream::vision::sim::parse_command_script;

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
    let scene = RobotScene::new(seed, Arc::new(Network::load(&spec)?))?;
    let world = scene.world.clone();
    let commands = parse_command_script("0.5:go,7:left,9:go,18:stop")?;
    let run = RobotRun {
        control_hz: rate,
        duration: 20.0,
        realtime,
        ..RobotRun::default()
    };
    let log = scene.run(&run, RobotCommands::Scheduled(commands))?.log;
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
