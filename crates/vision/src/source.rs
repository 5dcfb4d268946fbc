//! Frame sources: image-file sequences (PNG / PGM through the `image` crate) and the simulated
//! depth camera, behind one trait; and writing depth frames as 16-bit PNG.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageBuffer, Luma};
use nalgebra::Isometry2;

use crate::camera::SimDepthCamera;
use crate::{DepthFrame, DepthFrameMm, ImageFrame, VisionError, World};

/// A decoded image file.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadedFrame {
    /// 16-bit single channel: depth in millimetres.
    DepthMm(DepthFrameMm),
    /// 8-bit grey (1 channel) or RGB (3 channels).
    Image(ImageFrame),
}

/// Reads one image file: 16-bit grey PNG/PGM as depth (mm), 8-bit grey as grey, anything else
/// as RGB.
pub fn read_frame(path: &Path) -> Result<LoadedFrame, VisionError> {
    let img = image::open(path).map_err(|e| VisionError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let frame = match img {
        DynamicImage::ImageLuma16(b) => {
            LoadedFrame::DepthMm(DepthFrameMm::from_vec(w, h, 1, b.into_raw())?)
        }
        DynamicImage::ImageLuma8(b) => {
            LoadedFrame::Image(ImageFrame::from_vec(w, h, 1, b.into_raw())?)
        }
        other => LoadedFrame::Image(ImageFrame::from_vec(w, h, 3, other.to_rgb8().into_raw())?),
    };
    Ok(frame)
}

/// Writes a depth frame (metres) as a 16-bit grey PNG in millimetres (0 = no return).
pub fn write_depth_png(frame: &DepthFrame, path: &Path) -> Result<(), VisionError> {
    let mm = frame.to_mm();
    let buf: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_raw(mm.width() as u32, mm.height() as u32, mm.into_vec()).ok_or(
            VisionError::FrameSize {
                expected: frame.width() * frame.height(),
                actual: frame.data().len(),
            },
        )?;
    buf.save(path).map_err(|e| VisionError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Something that produces depth frames (metres) with timestamps (seconds).
pub trait DepthSource {
    /// Fills `out` with the next frame; `Ok(None)` at the end.
    fn next_depth(&mut self, out: &mut DepthFrame) -> Result<Option<f64>, VisionError>;
}

/// A sequence of image files played at a fixed frame rate.
pub struct ImageSequence {
    paths: Vec<PathBuf>,
    next: usize,
    frame_rate: f64,
}

impl ImageSequence {
    /// The given files, in order.
    pub fn new(paths: Vec<PathBuf>, frame_rate: f64) -> Self {
        ImageSequence {
            paths,
            next: 0,
            frame_rate,
        }
    }

    /// Every `.png` / `.pgm` file of a folder, sorted by name.
    pub fn from_dir(dir: &Path, frame_rate: f64) -> Result<Self, VisionError> {
        let rd = std::fs::read_dir(dir).map_err(|source| VisionError::Io {
            path: dir.to_path_buf(),
            error: source,
        })?;
        let mut paths = Vec::new();
        for e in rd {
            let e = e.map_err(|source| VisionError::Io {
                path: dir.to_path_buf(),
                error: source,
            })?;
            let p = e.path();
            let ext = p
                .extension()
                .and_then(|x| x.to_str())
                .map(str::to_ascii_lowercase);
            if matches!(ext.as_deref(), Some("png" | "pgm")) {
                paths.push(p);
            }
        }
        paths.sort();
        Ok(ImageSequence::new(paths, frame_rate))
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// True when there are no files.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The next file decoded, with its timestamp.
    pub fn next_frame(&mut self) -> Option<Result<(f64, LoadedFrame), VisionError>> {
        let p = self.paths.get(self.next)?;
        let t = self.next as f64 / self.frame_rate;
        self.next += 1;
        Some(read_frame(p).map(|f| (t, f)))
    }
}

impl DepthSource for ImageSequence {
    fn next_depth(&mut self, out: &mut DepthFrame) -> Result<Option<f64>, VisionError> {
        let Some(r) = self.next_frame() else {
            return Ok(None);
        };
        let (t, f) = r?;
        match f {
            LoadedFrame::DepthMm(mm) => {
                *out = mm.to_metres();
                Ok(Some(t))
            }
            LoadedFrame::Image(_) => Err(VisionError::NotDepth {
                path: self.paths[self.next - 1].clone(),
            }),
        }
    }
}

/// The simulated camera following a list of poses, one per frame.
pub struct SimDepthSource {
    camera: SimDepthCamera,
    world: World,
    poses: Vec<Isometry2<f64>>,
    next: usize,
    frame_rate: f64,
}

impl SimDepthSource {
    /// Frames seen from `poses` in `world`.
    pub fn new(
        camera: SimDepthCamera,
        world: World,
        poses: Vec<Isometry2<f64>>,
        frame_rate: f64,
    ) -> Self {
        SimDepthSource {
            camera,
            world,
            poses,
            next: 0,
            frame_rate,
        }
    }
}

impl DepthSource for SimDepthSource {
    fn next_depth(&mut self, out: &mut DepthFrame) -> Result<Option<f64>, VisionError> {
        let Some(pose) = self.poses.get(self.next) else {
            return Ok(None);
        };
        self.camera.render(&self.world, pose, self.next as u64, out);
        let t = self.next as f64 / self.frame_rate;
        self.next += 1;
        Ok(Some(t))
    }
}
