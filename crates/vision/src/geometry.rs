//! Geometry (nalgebra): pinhole intrinsics, depth pixel -> 3D point, camera mount, robot poses.
//!
//! Frames: the **camera optical frame** is x right, y down, z forward (depth = z); the **robot
//! frame** is x forward, y left, z up, origin on the floor between the wheels; the **world** is
//! the plane the robot drives on (x, y), z up. A robot pose is an `Isometry2` (world <- robot).

use nalgebra::{
    Isometry2, Isometry3, Matrix3, Point2, Point3, Rotation3, Translation3, UnitQuaternion, Vector3,
};

/// Pinhole intrinsics of a `width x height` image (pixels; pixel centres at integer + 0.5 are
/// not used: pixel `(u, v)` is at `u`, `v` like OpenCV).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Intrinsics {
    /// Image columns.
    pub width: usize,
    /// Image rows.
    pub height: usize,
    /// Focal length in pixels, horizontal.
    pub fx: f64,
    /// Focal length in pixels, vertical.
    pub fy: f64,
    /// Principal point, column.
    pub cx: f64,
    /// Principal point, row.
    pub cy: f64,
}

impl Intrinsics {
    /// Square pixels, principal point at the image centre, given horizontal field of view.
    pub fn from_hfov(width: usize, height: usize, hfov_deg: f64) -> Self {
        let fx = (width as f64 / 2.0) / (hfov_deg.to_radians() / 2.0).tan();
        Intrinsics {
            width,
            height,
            fx,
            fy: fx,
            cx: (width as f64 - 1.0) / 2.0,
            cy: (height as f64 - 1.0) / 2.0,
        }
    }

    /// The 3x3 camera matrix K.
    pub fn matrix(&self) -> Matrix3<f64> {
        Matrix3::new(self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0)
    }

    /// The ray through pixel `(u, v)` scaled so its z is 1 (a point at depth `z` is `z * ray`).
    pub fn ray(&self, u: f64, v: f64) -> Vector3<f64> {
        Vector3::new((u - self.cx) / self.fx, (v - self.cy) / self.fy, 1.0)
    }

    /// Depth pixel -> 3D point in the camera optical frame. `None` for no return (z <= 0 or NaN).
    pub fn deproject(&self, u: f64, v: f64, z: f64) -> Option<Point3<f64>> {
        if z > 0.0 && z.is_finite() {
            Some(Point3::from(self.ray(u, v) * z))
        } else {
            None
        }
    }

    /// 3D point in the optical frame -> pixel `(u, v)` and depth; `None` behind the camera.
    pub fn project(&self, p: &Point3<f64>) -> Option<(f64, f64, f64)> {
        if p.z <= 0.0 {
            return None;
        }
        Some((
            self.fx * p.x / p.z + self.cx,
            self.fy * p.y / p.z + self.cy,
            p.z,
        ))
    }

    /// Bearing (radians, positive = left, robot convention) of column `u` for a level camera.
    pub fn column_bearing(&self, u: f64) -> f64 {
        -((u - self.cx) / self.fx).atan()
    }
}

/// Where the camera sits on the robot: robot <- optical isometry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CameraMount {
    /// robot <- camera optical frame.
    pub robot_from_camera: Isometry3<f64>,
}

impl CameraMount {
    /// A camera `forward` metres ahead of the robot origin, `height` above the floor, looking
    /// along the robot's x axis, pitched down by `pitch_down_deg` (0 = level).
    pub fn forward_looking(forward: f64, height: f64, pitch_down_deg: f64) -> Self {
        // Columns: the optical axes written in the robot frame (x_opt = -y, y_opt = -z, z_opt = x).
        let level = Rotation3::from_matrix_unchecked(Matrix3::new(
            0.0, 0.0, 1.0, //
            -1.0, 0.0, 0.0, //
            0.0, -1.0, 0.0,
        ));
        // Pitch down = rotation about the robot's y axis (left) by +pitch.
        let pitch = Rotation3::from_axis_angle(&Vector3::y_axis(), pitch_down_deg.to_radians());
        let rot = UnitQuaternion::from_rotation_matrix(&(pitch * level));
        CameraMount {
            robot_from_camera: Isometry3::from_parts(Translation3::new(forward, 0.0, height), rot),
        }
    }

    /// A point in the optical frame -> robot frame.
    pub fn to_robot(&self, p: &Point3<f64>) -> Point3<f64> {
        self.robot_from_camera * p
    }

    /// The camera's pose in the world for a robot pose: world <- optical.
    pub fn world_from_camera(&self, robot_pose: &Isometry2<f64>) -> Isometry3<f64> {
        lift_pose(robot_pose) * self.robot_from_camera
    }
}

/// A planar pose (world <- robot) as a 3D isometry (rotation about z, z = 0).
pub fn lift_pose(pose: &Isometry2<f64>) -> Isometry3<f64> {
    Isometry3::from_parts(
        Translation3::new(pose.translation.x, pose.translation.y, 0.0),
        UnitQuaternion::from_axis_angle(&Vector3::z_axis(), pose.rotation.angle()),
    )
}

/// Deprojects every valid pixel of a depth frame (metres) and moves it into the robot frame,
/// appending to `out` (cleared first). Takes every `step`-th pixel in each direction.
pub fn depth_to_robot_points(
    depth: &crate::DepthFrame,
    k: &Intrinsics,
    mount: &CameraMount,
    step: usize,
    out: &mut Vec<Point3<f64>>,
) {
    out.clear();
    let step = step.max(1);
    for v in (0..depth.height()).step_by(step) {
        let row = depth.row(v);
        for u in (0..depth.width()).step_by(step) {
            if let Some(p) = k.deproject(u as f64, v as f64, row[u * depth.channels()] as f64) {
                out.push(mount.to_robot(&p));
            }
        }
    }
}

/// A robot-frame point -> world.
pub fn robot_to_world(pose: &Isometry2<f64>, p: &Point2<f64>) -> Point2<f64> {
    pose * p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deproject_project_round_trip() {
        let k = Intrinsics::from_hfov(160, 120, 90.0);
        assert!((k.fx - 80.0).abs() < 1e-9);
        let p = k.deproject(10.0, 100.0, 2.5).unwrap();
        let (u, v, z) = k.project(&p).unwrap();
        assert!((u - 10.0).abs() < 1e-9 && (v - 100.0).abs() < 1e-9 && (z - 2.5).abs() < 1e-12);
        assert!(k.deproject(3.0, 3.0, 0.0).is_none());
    }

    #[test]
    fn level_camera_axes_map_to_robot_axes() {
        let m = CameraMount::forward_looking(0.1, 0.25, 0.0);
        // 1 m straight ahead of the camera = 1.1 m ahead of the robot origin, at camera height.
        let p = m.to_robot(&Point3::new(0.0, 0.0, 1.0));
        assert!((p - Point3::new(1.1, 0.0, 0.25)).norm() < 1e-12);
        // Image right (+x optical) is robot right (-y); image down (+y optical) is robot down.
        let r = m.to_robot(&Point3::new(1.0, 0.0, 0.0));
        assert!((r - Point3::new(0.1, -1.0, 0.25)).norm() < 1e-12);
        let d = m.to_robot(&Point3::new(0.0, 1.0, 0.0));
        assert!((d - Point3::new(0.1, 0.0, -0.75)).norm() < 1e-12);
        // Pitched down 90 degrees: the optical axis points at the floor.
        let m90 = CameraMount::forward_looking(0.0, 1.0, 90.0);
        let f = m90.to_robot(&Point3::new(0.0, 0.0, 1.0));
        assert!((f - Point3::new(0.0, 0.0, 0.0)).norm() < 1e-9, "{f}");
    }

    #[test]
    fn world_from_camera_composes_pose() {
        let m = CameraMount::forward_looking(0.0, 0.2, 0.0);
        let pose = Isometry2::new(
            nalgebra::Vector2::new(1.0, 2.0),
            std::f64::consts::FRAC_PI_2,
        );
        let w = m.world_from_camera(&pose);
        // Robot faces +y: a point 1 m ahead of the camera is at (1, 3, 0.2).
        let p = w * Point3::new(0.0, 0.0, 1.0);
        assert!((p - Point3::new(1.0, 3.0, 0.2)).norm() < 1e-12, "{p}");
        let k = Intrinsics::from_hfov(160, 120, 90.0);
        assert!(k.column_bearing(0.0) > 0.7 && k.column_bearing(159.0) < -0.7);
    }
}
