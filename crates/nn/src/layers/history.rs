//! A ring of the last few frames a layer must remember: exactly (k_t - 1) * dilation of them.

/// Past input frames of one layer, oldest overwritten first. Zero at the start, which is the
/// causal zero padding of the offline forward.
#[derive(Clone, Debug)]
pub struct History {
    buf: Box<[f32]>,
    frame_len: usize,
    capacity: usize,
    head: usize,
}

impl History {
    /// Room for `capacity` frames of `frame_len` values each.
    pub fn new(capacity: usize, frame_len: usize) -> Self {
        Self {
            buf: vec![0.0; capacity * frame_len].into_boxed_slice(),
            frame_len,
            capacity,
            head: 0,
        }
    }

    /// The frame `lag` steps back (1 = the frame pushed last); `1 <= lag <= capacity`.
    #[inline]
    pub fn lag(&self, lag: usize) -> &[f32] {
        debug_assert!(lag >= 1 && lag <= self.capacity);
        let slot = (self.head + self.capacity - lag) % self.capacity;
        &self.buf[slot * self.frame_len..(slot + 1) * self.frame_len]
    }

    /// Remembers `frame` as the newest, forgetting the oldest. No-op when the capacity is 0.
    #[inline]
    pub fn push(&mut self, frame: &[f32]) {
        if self.capacity == 0 {
            return;
        }
        let start = self.head * self.frame_len;
        self.buf[start..start + self.frame_len].copy_from_slice(frame);
        self.head = (self.head + 1) % self.capacity;
    }

    /// Number of f32 values held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Forgets everything (back to zero padding).
    pub fn reset(&mut self) {
        self.buf.fill(0.0);
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lags_return_recent_frames_in_order() {
        let mut h = History::new(3, 2);
        assert_eq!(h.lag(1), &[0.0, 0.0]);
        for i in 1..=5 {
            h.push(&[i as f32, -(i as f32)]);
        }
        assert_eq!(h.lag(1), &[5.0, -5.0]);
        assert_eq!(h.lag(2), &[4.0, -4.0]);
        assert_eq!(h.lag(3), &[3.0, -3.0]);
        h.reset();
        assert_eq!(h.lag(3), &[0.0, 0.0]);
    }
}
