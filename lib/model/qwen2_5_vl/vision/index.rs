//! Host-side index bookkeeping of the Qwen2.5-VL vision tower, computed from `grid_thw` alone, as transformers
//! 5.17 `vision_utils.py` does it:
//!
//! - [`position_ids`] is `get_vision_position_ids` (the `(h, w)` rotary positions of `rot_pos_emb`, laid out in
//!   spatial-merge-block order, repeated for every frame);
//! - [`cu_seqlens`] is `get_vision_cu_seqlens` (one full-attention segment per frame);
//! - [`window_index`] is `get_vision_window_index` (the permutation of merge units into attention windows and the
//!   window boundaries `cu_window_seqlens`);
//! - [`SegmentPlan`] is r1lab's own grouping of attention segments by length, so that block-diagonal attention
//!   runs as one batched `scaled_dot_product_attention` per distinct segment length.
//!
//! Deviation (same result): transformers pads every merged grid by `window - len % window`, which adds a whole
//! empty window row/column when the window divides the grid, and then drops the resulting zero-length windows
//! with `unique_consecutive`; here windows are counted with a ceiling division, so no empty window exists.
use anyhow::{Result, ensure};

/// One `grid_thw` row: frames, patch rows, patch columns.
pub type Grid = [i64; 3];

/// Checks every grid row: positive sizes, `h` and `w` multiples of `merge`. Returns the total patch count.
pub fn check_grids(grids: &[Grid], merge: i64) -> Result<i64> {
    ensure!(!grids.is_empty(), "grid_thw is empty: the vision tower needs at least one image");
    let mut total = 0;
    for (i, &[t, h, w]) in grids.iter().enumerate() {
        ensure!(t > 0 && h > 0 && w > 0, "grid_thw[{i}] = [{t}, {h}, {w}] must be positive");
        ensure!(
            h % merge == 0 && w % merge == 0,
            "grid_thw[{i}] = [{t}, {h}, {w}]: h and w must be multiples of spatial_merge_size {merge} (the \
             processor resizes images to multiples of patch_size * merge_size)"
        );
        total += t * h * w;
    }
    Ok(total)
}

/// `(h, w)` position of every patch, in the order the processor emits patches: per frame, merge blocks in
/// row-major order, and inside a block its `merge x merge` patches in row-major order.
pub fn position_ids(grids: &[Grid], merge: i64) -> Vec<[i64; 2]> {
    let mut out = Vec::new();
    for &[t, h, w] in grids {
        let mut frame = Vec::with_capacity((h * w) as usize);
        for by in 0..h / merge {
            for bx in 0..w / merge {
                for iy in 0..merge {
                    for ix in 0..merge {
                        frame.push([by * merge + iy, bx * merge + ix]);
                    }
                }
            }
        }
        for _ in 0..t {
            out.extend_from_slice(&frame);
        }
    }
    out
}

/// Cumulative patch counts with one segment per frame: `[0, h0*w0, 2*h0*w0, ...]` (`t` segments per row).
pub fn cu_seqlens(grids: &[Grid]) -> Vec<i64> {
    let mut cu = vec![0];
    for &[t, h, w] in grids {
        for _ in 0..t {
            cu.push(cu.last().unwrap() + h * w);
        }
    }
    cu
}

/// The window permutation and boundaries.
///
/// Returns `(window_index, cu_window_seqlens)`: `window_index[j]` is the merge unit (a group of
/// `merge * merge` consecutive patches) placed at position `j` of the window order; windows are
/// `window x window` merged tokens (fewer at the right and bottom edges), visited per frame in row-major
/// order, their tokens row-major inside; `cu_window_seqlens` are the window boundaries in **patches**.
pub fn window_index(grids: &[Grid], merge: i64, window: i64) -> (Vec<i64>, Vec<i64>) {
    let unit = merge * merge;
    let (mut index, mut cu) = (Vec::new(), vec![0]);
    let mut offset = 0;
    for &[t, h, w] in grids {
        let (gh, gw) = (h / merge, w / merge);
        for frame in 0..t {
            let base = offset + frame * gh * gw;
            for wy in 0..(gh + window - 1) / window {
                for wx in 0..(gw + window - 1) / window {
                    let (y0, x0) = (wy * window, wx * window);
                    let (y1, x1) = ((y0 + window).min(gh), (x0 + window).min(gw));
                    for y in y0..y1 {
                        for x in x0..x1 {
                            index.push(base + y * gw + x);
                        }
                    }
                    cu.push(cu.last().unwrap() + (y1 - y0) * (x1 - x0) * unit);
                }
            }
        }
        offset += t * gh * gw;
    }
    (index, cu)
}

/// Inverse of a permutation of `0..n` (`argsort` of a permutation).
pub fn inverse_permutation(perm: &[i64]) -> Vec<i64> {
    let mut inv = vec![0; perm.len()];
    for (j, &p) in perm.iter().enumerate() {
        inv[p as usize] = j as i64;
    }
    inv
}

/// Block-diagonal attention over the segments `[cu[i], cu[i+1])` as batched dense attention: segments of equal
/// length are gathered into one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentPlan {
    /// `(length, count, rows)`: `count` segments of `length` rows each; `rows` lists their row indices,
    /// segment after segment. Groups are in order of increasing length.
    pub groups: Vec<(i64, i64, Vec<i64>)>,
    /// Row `r` of the input is row `inverse[r]` of the groups' concatenated output; `None` when that
    /// concatenation is already in input order.
    pub inverse: Option<Vec<i64>>,
}

impl SegmentPlan {
    pub fn new(cu: &[i64]) -> Result<Self> {
        ensure!(cu.len() >= 2 && cu[0] == 0, "cu_seqlens must start at 0 and have at least one segment, got {cu:?}");
        let mut by_len = std::collections::BTreeMap::<i64, Vec<i64>>::new();
        for pair in cu.windows(2) {
            ensure!(pair[1] > pair[0], "cu_seqlens must be strictly increasing, got {cu:?}");
            by_len.entry(pair[1] - pair[0]).or_default().extend(pair[0]..pair[1]);
        }
        let groups: Vec<_> = by_len.into_iter().map(|(len, rows)| (len, rows.len() as i64 / len, rows)).collect();
        let order: Vec<i64> = groups.iter().flat_map(|g| g.2.iter().copied()).collect();
        let identity = order.iter().enumerate().all(|(j, &r)| r == j as i64);
        Ok(SegmentPlan { groups, inverse: (!identity).then(|| inverse_permutation(&order)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_merge_blocks() {
        // A 2x4 patch grid = 1x2 merge blocks; then a second frame repeats the first.
        let pos = position_ids(&[[2, 2, 4]], 2);
        let frame = [[0, 0], [0, 1], [1, 0], [1, 1], [0, 2], [0, 3], [1, 2], [1, 3]];
        assert_eq!(pos.len(), 16);
        assert_eq!(&pos[..8], &frame);
        assert_eq!(&pos[8..], &frame);
    }

    #[test]
    fn cu_seqlens_are_per_frame() {
        assert_eq!(cu_seqlens(&[[1, 4, 6], [2, 2, 2]]), vec![0, 24, 28, 32]);
    }

    #[test]
    fn windows_of_an_uneven_grid() {
        // Merged grid 3x5 (patches 6x10), windows of 2x2 merged tokens: 2 rows x 3 columns of windows.
        let (index, cu) = window_index(&[[1, 6, 10]], 2, 2);
        #[rustfmt::skip]
        let expected = vec![
            0, 1, 5, 6,   2, 3, 7, 8,   4, 9,
            10, 11,       12, 13,       14,
        ];
        assert_eq!(index, expected);
        assert_eq!(cu, vec![0, 16, 32, 40, 48, 56, 60]);
    }

    #[test]
    fn windows_of_several_images_and_frames() {
        // Merged 2x2 (one full window), then two frames of merged 1x3 (windows 2 + 1 per frame).
        let (index, cu) = window_index(&[[1, 4, 4], [2, 2, 6]], 2, 2);
        assert_eq!(index, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(cu, vec![0, 16, 24, 28, 36, 40]);
        let (index, _) = window_index(&[[1, 2, 2], [1, 4, 2]], 2, 1);
        assert_eq!(index, vec![0, 1, 2]);
    }

    #[test]
    fn segment_plan_groups_by_length() {
        let plan = SegmentPlan::new(&[0, 2, 3, 5]).unwrap();
        assert_eq!(plan.groups, vec![(1, 1, vec![2]), (2, 2, vec![0, 1, 3, 4])]);
        // Concatenated output rows are [2, 0, 1, 3, 4]; input row 0 sits at output row 1.
        assert_eq!(plan.inverse, Some(vec![1, 2, 0, 3, 4]));
        let plan = SegmentPlan::new(&[0, 3, 6]).unwrap();
        assert_eq!(plan.inverse, None);
        assert!(SegmentPlan::new(&[0, 3, 3]).is_err());
        assert!(SegmentPlan::new(&[0]).is_err());
    }

    #[test]
    fn grid_checks() {
        assert_eq!(check_grids(&[[1, 4, 6], [2, 2, 2]], 2).unwrap(), 32);
        let err = check_grids(&[[1, 3, 4]], 2).unwrap_err().to_string();
        assert!(err.contains("multiples of spatial_merge_size"), "{err}");
        assert!(check_grids(&[], 2).is_err());
        assert!(check_grids(&[[0, 2, 2]], 2).is_err());
    }

    #[test]
    fn inverse_of_permutation() {
        assert_eq!(inverse_permutation(&[2, 0, 1]), vec![1, 2, 0]);
    }
}
