//! A simulated depth camera: ray-casts the [`World`] from a robot pose, row by row, with seeded
//! depth noise and dropouts.

use nalgebra::{Isometry2, Point3, UnitQuaternion, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::geometry::{CameraMount, Intrinsics};
use crate::{DepthFrame, World};

/// Sensor model of the simulated camera.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DepthNoise {
    /// Gaussian depth noise: sigma = `sigma_per_m2 * z^2` (m), like structured-light sensors.
    pub sigma_per_m2: f64,
    /// Probability that a pixel returns nothing (0).
    pub dropout: f64,
    /// Nearest measurable depth (m); nearer reads 0.
    pub min_range: f64,
    /// Farthest measurable depth (m); farther reads 0.
    pub max_range: f64,
}

impl Default for DepthNoise {
    fn default() -> Self {
        DepthNoise {
            sigma_per_m2: 0.002,
            dropout: 0.01,
            min_range: 0.1,
            max_range: 8.0,
        }
    }
}

impl DepthNoise {
    /// No noise, no dropouts (exact ground truth within range).
    pub fn none() -> Self {
        DepthNoise {
            sigma_per_m2: 0.0,
            dropout: 0.0,
            ..DepthNoise::default()
        }
    }
}

/// Per-frame plan of a [`SimDepthCamera`]: camera pose and (level camera) per-column
/// footprint intervals. Reuse one across frames.
#[derive(Clone, Debug)]
pub struct FrameRays {
    origin: Point3<f64>,
    rotation: UnitQuaternion<f64>,
    level: bool,
    n_obstacles: usize,
    intervals: Vec<(f64, f64)>,
}

impl Default for FrameRays {
    fn default() -> Self {
        FrameRays {
            origin: Point3::origin(),
            rotation: UnitQuaternion::identity(),
            level: false,
            n_obstacles: 0,
            intervals: Vec::new(),
        }
    }
}

/// A simulated depth camera. Rays are planned once; rendering a row allocates nothing.
#[derive(Clone, Debug)]
pub struct SimDepthCamera {
    intrinsics: Intrinsics,
    mount: CameraMount,
    noise: DepthNoise,
    seed: u64,
    rays: Vec<Vector3<f64>>,
}

/// SplitMix64 finaliser: decorrelates (seed, frame, row) into a stream seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SimDepthCamera {
    /// A camera with the given intrinsics, mount, noise, deterministic for `seed`.
    pub fn new(intrinsics: Intrinsics, mount: CameraMount, noise: DepthNoise, seed: u64) -> Self {
        let mut rays = Vec::with_capacity(intrinsics.width * intrinsics.height);
        for v in 0..intrinsics.height {
            for u in 0..intrinsics.width {
                rays.push(intrinsics.ray(u as f64, v as f64));
            }
        }
        SimDepthCamera {
            intrinsics,
            mount,
            noise,
            seed,
            rays,
        }
    }

    /// The default robot camera: 160x120, 90 degree horizontal field of view, level, 0.25 m
    /// above the floor, 0.1 m ahead of the wheel axle.
    pub fn default_robot(noise: DepthNoise, seed: u64) -> Self {
        SimDepthCamera::new(
            Intrinsics::from_hfov(160, 120, 90.0),
            CameraMount::forward_looking(0.1, 0.25, 0.0),
            noise,
            seed,
        )
    }

    /// Intrinsics.
    pub fn intrinsics(&self) -> &Intrinsics {
        &self.intrinsics
    }
    /// Mount on the robot.
    pub fn mount(&self) -> &CameraMount {
        &self.mount
    }
    /// Sensor model.
    pub fn noise(&self) -> &DepthNoise {
        &self.noise
    }

    /// Plans a frame seen from `pose`: the camera pose in the world and, for a level camera
    /// (whose image columns are vertical planes), every column's footprint intervals. Allocates
    /// only when `rays` must grow (first use, or a world with more obstacles).
    pub fn begin_frame(&self, world: &World, pose: &Isometry2<f64>, rays: &mut FrameRays) {
        let cam = self.mount.world_from_camera(pose);
        rays.origin = cam * Point3::origin();
        rays.rotation = cam.rotation;
        rays.n_obstacles = world.obstacles.len();
        // Level: the optical y axis (image down) is the world's -z axis.
        let down = cam.rotation * Vector3::y();
        rays.level = (down + Vector3::z()).norm() < 1e-9;
        if rays.level {
            let (w, n) = (self.intrinsics.width, world.obstacles.len());
            rays.intervals.resize(w * n, (0.0, 0.0));
            for u in 0..w {
                let d = cam.rotation * self.rays[u];
                world.intervals_2d(
                    &rays.origin,
                    nalgebra::Vector2::new(d.x, d.y),
                    &mut rays.intervals[u * n..(u + 1) * n],
                );
            }
        }
    }

    /// Renders row `v` of frame number `frame_index` planned by [`SimDepthCamera::begin_frame`]
    /// into `out` (`width` metres; 0 = no return). No allocation.
    pub fn render_row_with(
        &self,
        world: &World,
        rays: &FrameRays,
        frame_index: u64,
        v: usize,
        out: &mut [f32],
    ) {
        let w = self.intrinsics.width;
        let n = rays.n_obstacles;
        let mut rng = ChaCha8Rng::seed_from_u64(mix(
            self.seed ^ mix(frame_index.wrapping_mul(0x1_0000) ^ v as u64)
        ));
        for (u, o) in out.iter_mut().enumerate().take(w) {
            let d = rays.rotation * self.rays[v * w + u];
            // The camera-frame ray has z = 1, so the ray parameter t is the depth z.
            let z = if rays.level && n == world.obstacles.len() {
                world.ray_cast_with(&rays.origin, &d, 1e-6, &rays.intervals[u * n..(u + 1) * n])
            } else {
                world.ray_cast(&rays.origin, &d, 1e-6)
            };
            let noise: f64 = StandardNormal.sample(&mut rng);
            let drop = rng.random::<f64>() < self.noise.dropout;
            *o = match z {
                Some(z) if !drop && z >= self.noise.min_range && z <= self.noise.max_range => {
                    let zn = z + noise * self.noise.sigma_per_m2 * z * z;
                    zn.max(self.noise.min_range) as f32
                }
                _ => 0.0,
            };
        }
    }

    /// Renders one row seen from `pose` (plans the frame each call: for a few rows; stream
    /// whole frames with [`SimDepthCamera::begin_frame`] and [`SimDepthCamera::render_row_with`]).
    pub fn render_row(
        &self,
        world: &World,
        pose: &Isometry2<f64>,
        frame_index: u64,
        v: usize,
        out: &mut [f32],
    ) {
        let mut rays = FrameRays::default();
        self.begin_frame(world, pose, &mut rays);
        self.render_row_with(world, &rays, frame_index, v, out);
    }

    /// Renders a whole frame into `out` (resized to the intrinsics on first use).
    pub fn render(
        &self,
        world: &World,
        pose: &Isometry2<f64>,
        frame_index: u64,
        out: &mut DepthFrame,
    ) {
        let mut rays = FrameRays::default();
        self.render_planned(world, pose, frame_index, out, &mut rays);
    }

    /// [`SimDepthCamera::render`] reusing `rays` (no allocation once it has grown).
    pub fn render_planned(
        &self,
        world: &World,
        pose: &Isometry2<f64>,
        frame_index: u64,
        out: &mut DepthFrame,
        rays: &mut FrameRays,
    ) {
        let (w, h) = (self.intrinsics.width, self.intrinsics.height);
        if out.width() != w || out.height() != h || out.channels() != 1 {
            *out = DepthFrame::new(w, h, 1);
        }
        self.begin_frame(world, pose, rays);
        for v in 0..h {
            self.render_row_with(world, rays, frame_index, v, out.row_mut(v));
        }
    }

    /// A new frame seen from `pose`.
    pub fn capture(&self, world: &World, pose: &Isometry2<f64>, frame_index: u64) -> DepthFrame {
        let mut f = DepthFrame::new(self.intrinsics.width, self.intrinsics.height, 1);
        self.render(world, pose, frame_index, &mut f);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector2;

    #[test]
    fn level_camera_sees_wall_at_constant_depth_per_column_and_floor_below() {
        let world = World::room(4.0, 4.0, 0.1, 2.0);
        let cam = SimDepthCamera::default_robot(DepthNoise::none(), 1);
        // Robot at (1, 2) facing +x: the camera is at x = 1.1, the wall face at x = 4.
        let pose = Isometry2::new(Vector2::new(1.0, 2.0), 0.0);
        let f = cam.capture(&world, &pose, 0);
        // Centre column, upper half (below the 2 m wall top): the wall at depth 2.9 m.
        assert_eq!(f.row(0)[80], 0.0, "over the wall: no return");
        let z = f.row(20)[80];
        assert!((z - 2.9).abs() < 1e-4, "{z}");
        assert!((f.row(40)[80] - 2.9).abs() < 1e-4);
        // Bottom row: the floor at depth h * fy / (v - cy).
        let k = cam.intrinsics();
        let expect = 0.25 * k.fy / (119.0 - k.cy);
        assert!((f.row(119)[80] as f64 - expect).abs() < 1e-4);
        // Deterministic noise per seed; row rendering equals frame rendering.
        let noisy = SimDepthCamera::default_robot(DepthNoise::default(), 5);
        let a = noisy.capture(&world, &pose, 3);
        let b = noisy.capture(&world, &pose, 3);
        assert_eq!(a, b);
        let mut row = vec![0.0; 160];
        noisy.render_row(&world, &pose, 3, 77, &mut row);
        assert_eq!(row, a.row(77));
        assert_ne!(a, noisy.capture(&world, &pose, 4));
        // The level-camera column plan gives the same depths as per-pixel ray casting.
        let tilted = SimDepthCamera::new(
            *cam.intrinsics(),
            CameraMount::forward_looking(0.1, 0.25, 1e-7),
            DepthNoise::none(),
            1,
        );
        let general = tilted.capture(&world, &pose, 0);
        for (x, y) in general.data().iter().zip(f.data()) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }
}
