//! A simple simulated world: a floor, walls and boxes as vertical convex prisms; ray casting and
//! clearance queries; seeded random worlds.

use nalgebra::{Point2, Point3, Vector2, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A vertical prism: a convex polygon on the floor (counter-clockwise), extruded from z = 0 to
/// `height`. Walls are thin long prisms.
#[derive(Clone, Debug, PartialEq)]
pub struct Prism {
    /// Corners, counter-clockwise, in world metres.
    pub corners: Vec<Point2<f64>>,
    /// Top of the prism (m).
    pub height: f64,
    /// What it is (for plots).
    pub kind: ObstacleKind,
}

/// Kind of obstacle (drawn differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObstacleKind {
    /// A room wall.
    Wall,
    /// A box standing on the floor.
    Box,
}

impl Prism {
    /// An oriented box centred at `c` with half sizes `(hx, hy)` rotated by `yaw`.
    pub fn oriented_box(
        c: Point2<f64>,
        hx: f64,
        hy: f64,
        yaw: f64,
        height: f64,
        kind: ObstacleKind,
    ) -> Self {
        let (s, co) = yaw.sin_cos();
        let ax = Vector2::new(co, s) * hx;
        let ay = Vector2::new(-s, co) * hy;
        Prism {
            corners: vec![c - ax - ay, c + ax - ay, c + ax + ay, c - ax + ay],
            height,
            kind,
        }
    }

    /// Parameter interval `[t_in, t_out]` where the 2D line `o + t d` is inside the polygon
    /// (Cyrus-Beck clipping against each edge's half plane), or `None`.
    fn clip_2d(&self, o: Vector2<f64>, d: Vector2<f64>) -> Option<(f64, f64)> {
        let mut t0 = f64::NEG_INFINITY;
        let mut t1 = f64::INFINITY;
        let n = self.corners.len();
        for i in 0..n {
            let a = self.corners[i].coords;
            let b = self.corners[(i + 1) % n].coords;
            let e = b - a;
            // Outward normal of a CCW polygon edge.
            let nrm = Vector2::new(e.y, -e.x);
            let num = nrm.dot(&(o - a)); // > 0 outside
            let den = nrm.dot(&d);
            if den.abs() < 1e-15 {
                if num > 0.0 {
                    return None;
                }
                continue;
            }
            let t = -num / den;
            if den < 0.0 {
                t0 = t0.max(t); // entering
            } else {
                t1 = t1.min(t); // leaving
            }
            if t0 > t1 {
                return None;
            }
        }
        Some((t0, t1))
    }

    /// Distance from `p` to the polygon (0 inside).
    pub fn distance(&self, p: &Point2<f64>) -> f64 {
        let n = self.corners.len();
        let mut inside = true;
        let mut best = f64::INFINITY;
        for i in 0..n {
            let a = self.corners[i];
            let b = self.corners[(i + 1) % n];
            let e = b - a;
            let ap = p - a;
            if e.x * ap.y - e.y * ap.x < 0.0 {
                inside = false;
            }
            let t = (ap.dot(&e) / e.norm_squared()).clamp(0.0, 1.0);
            best = best.min((ap - e * t).norm());
        }
        if inside {
            0.0
        } else {
            best
        }
    }
}

/// The 2D footprint interval of a ray, handling a vertical ray (zero horizontal direction).
fn interval_2d(p: &Prism, o2: Vector2<f64>, d2: Vector2<f64>) -> Option<(f64, f64)> {
    if d2.norm_squared() < 1e-30 {
        (p.distance(&Point2::from(o2)) == 0.0).then_some((f64::NEG_INFINITY, f64::INFINITY))
    } else {
        p.clip_2d(o2, d2)
    }
}

/// The floor, walls and boxes.
#[derive(Clone, Debug, PartialEq)]
pub struct World {
    /// All obstacles.
    pub obstacles: Vec<Prism>,
    /// Room extent `(min, max)` corners, for plots and spawning.
    pub bounds: (Point2<f64>, Point2<f64>),
    /// Whether rays hit the floor (z = 0); off gives obstacle-only ground truth.
    pub floor: bool,
}

/// Parameters of a seeded random world.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorldParams {
    /// Room size x (m).
    pub room_x: f64,
    /// Room size y (m).
    pub room_y: f64,
    /// Number of boxes.
    pub boxes: usize,
    /// Wall thickness (m).
    pub wall: f64,
    /// Wall height (m).
    pub wall_height: f64,
}

impl Default for WorldParams {
    fn default() -> Self {
        WorldParams {
            room_x: 8.0,
            room_y: 6.0,
            boxes: 6,
            wall: 0.1,
            wall_height: 2.0,
        }
    }
}

impl World {
    /// An empty rectangular room `[0, x] x [0, y]` with walls of thickness `wall` outside it.
    pub fn room(x: f64, y: f64, wall: f64, wall_height: f64) -> Self {
        let mk = |cx: f64, cy: f64, hx: f64, hy: f64| {
            Prism::oriented_box(
                Point2::new(cx, cy),
                hx,
                hy,
                0.0,
                wall_height,
                ObstacleKind::Wall,
            )
        };
        let w = wall / 2.0;
        World {
            obstacles: vec![
                mk(x / 2.0, -w, x / 2.0 + wall, w),
                mk(x / 2.0, y + w, x / 2.0 + wall, w),
                mk(-w, y / 2.0, w, y / 2.0 + wall),
                mk(x + w, y / 2.0, w, y / 2.0 + wall),
            ],
            bounds: (Point2::new(0.0, 0.0), Point2::new(x, y)),
            floor: true,
        }
    }

    /// A room with `params.boxes` random boxes (0.2..0.8 m wide, 0.2..1.0 m tall), deterministic
    /// for `seed`. Boxes keep 0.5 m away from the walls' inner faces.
    pub fn random(params: &WorldParams, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut w = World::room(
            params.room_x,
            params.room_y,
            params.wall,
            params.wall_height,
        );
        for _ in 0..params.boxes {
            let hx: f64 = rng.random_range(0.1..0.4);
            let hy: f64 = rng.random_range(0.1..0.4);
            let m = 0.5 + hx.max(hy) * std::f64::consts::SQRT_2;
            let c = Point2::new(
                rng.random_range(m..params.room_x - m),
                rng.random_range(m..params.room_y - m),
            );
            let yaw = rng.random_range(0.0..std::f64::consts::PI);
            let h = rng.random_range(0.2..1.0);
            w.obstacles
                .push(Prism::oriented_box(c, hx, hy, yaw, h, ObstacleKind::Box));
        }
        w
    }

    /// First hit of the ray `o + t d` (t > `t_min`) with any obstacle or the floor (z = 0):
    /// returns `t`. `d` need not be normalised; `t` is in units of `d`.
    pub fn ray_cast(&self, o: &Point3<f64>, d: &Vector3<f64>, t_min: f64) -> Option<f64> {
        let (o2, d2) = (Vector2::new(o.x, o.y), Vector2::new(d.x, d.y));
        self.cast(o, d, t_min, |_, p| interval_2d(p, o2, d2))
    }

    /// The parameter interval of the 2D ray `(o.x, o.y) + t d2` inside each obstacle's footprint
    /// (`(INFINITY, NEG_INFINITY)` = misses), into `out` (one per obstacle).
    pub fn intervals_2d(&self, o: &Point3<f64>, d2: Vector2<f64>, out: &mut [(f64, f64)]) {
        let o2 = Vector2::new(o.x, o.y);
        for (slot, p) in out.iter_mut().zip(&self.obstacles) {
            *slot = interval_2d(p, o2, d2).unwrap_or((f64::INFINITY, f64::NEG_INFINITY));
        }
    }

    /// [`World::ray_cast`] with the footprint intervals precomputed by [`World::intervals_2d`]
    /// for the ray's horizontal direction (rays sharing it, e.g. one image column of a level
    /// camera, share the intervals).
    pub fn ray_cast_with(
        &self,
        o: &Point3<f64>,
        d: &Vector3<f64>,
        t_min: f64,
        intervals: &[(f64, f64)],
    ) -> Option<f64> {
        self.cast(o, d, t_min, |i, _| {
            let iv = intervals[i];
            (iv.0 <= iv.1).then_some(iv)
        })
    }

    fn cast(
        &self,
        o: &Point3<f64>,
        d: &Vector3<f64>,
        t_min: f64,
        mut interval: impl FnMut(usize, &Prism) -> Option<(f64, f64)>,
    ) -> Option<f64> {
        let mut best = f64::INFINITY;
        if self.floor && d.z < 0.0 && o.z > 0.0 {
            best = -o.z / d.z;
        }
        for (i, p) in self.obstacles.iter().enumerate() {
            // z interval of the slab [0, height].
            let (mut z0, mut z1) = if d.z.abs() < 1e-15 {
                if o.z < 0.0 || o.z > p.height {
                    continue;
                }
                (f64::NEG_INFINITY, f64::INFINITY)
            } else {
                let a = (0.0 - o.z) / d.z;
                let b = (p.height - o.z) / d.z;
                (a.min(b), a.max(b))
            };
            if z1 <= t_min || z0 >= best {
                continue;
            }
            let Some((t0, t1)) = interval(i, p) else {
                continue;
            };
            z0 = z0.max(t0);
            z1 = z1.min(t1);
            if z0 <= z1 && z1 > t_min {
                let t = z0.max(t_min);
                if t < best {
                    best = t;
                }
            }
        }
        (best.is_finite() && best > t_min).then_some(best)
    }

    /// Distance from `p` to the nearest obstacle (walls included), 0 inside one.
    pub fn clearance(&self, p: &Point2<f64>) -> f64 {
        self.obstacles
            .iter()
            .map(|o| o.distance(p))
            .fold(f64::INFINITY, f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ray_hits_wall_floor_and_box_top() {
        let w = World::room(4.0, 4.0, 0.1, 2.0);
        // Horizontal ray from (1, 2, 0.5) along +x hits the inner face of the x = 4 wall.
        let t = w
            .ray_cast(
                &Point3::new(1.0, 2.0, 0.5),
                &Vector3::new(1.0, 0.0, 0.0),
                0.0,
            )
            .unwrap();
        assert!((t - 3.0).abs() < 1e-12, "{t}");
        // Downward ray hits the floor.
        let t = w
            .ray_cast(
                &Point3::new(1.0, 2.0, 0.5),
                &Vector3::new(0.0, 0.0, -1.0),
                0.0,
            )
            .unwrap();
        assert!((t - 0.5).abs() < 1e-12);
        // A box 0.3 m tall: a steep ray from above lands on its top.
        let mut w2 = w.clone();
        w2.obstacles.push(Prism::oriented_box(
            Point2::new(2.0, 2.0),
            0.5,
            0.5,
            0.0,
            0.3,
            ObstacleKind::Box,
        ));
        let t = w2
            .ray_cast(
                &Point3::new(2.0, 2.0, 1.0),
                &Vector3::new(0.1, 0.0, -1.0),
                0.0,
            )
            .unwrap();
        assert!((t - 0.7).abs() < 1e-12, "{t}");
        // Its side: horizontal ray at z = 0.2 from x = 0.5.
        let t = w2
            .ray_cast(
                &Point3::new(0.5, 2.0, 0.2),
                &Vector3::new(1.0, 0.0, 0.0),
                0.0,
            )
            .unwrap();
        assert!((t - 1.0).abs() < 1e-12, "{t}");
        // Over it at z = 0.5: the far wall.
        let t = w2
            .ray_cast(
                &Point3::new(0.5, 2.0, 0.5),
                &Vector3::new(1.0, 0.0, 0.0),
                0.0,
            )
            .unwrap();
        assert!((t - 3.5).abs() < 1e-12, "{t}");
    }

    #[test]
    fn clearance_and_seeded_worlds() {
        let w = World::room(4.0, 3.0, 0.1, 2.0);
        assert!((w.clearance(&Point2::new(1.0, 1.5)) - 1.0).abs() < 1e-12);
        let a = World::random(&WorldParams::default(), 7);
        let b = World::random(&WorldParams::default(), 7);
        let c = World::random(&WorldParams::default(), 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.obstacles.len(), 4 + 6);
    }
}
