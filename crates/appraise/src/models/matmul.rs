//! Single-threaded f32 matrix products through the `gemm` crate, for the hand-written CPU
//! paths (the fused MLP and CNN training steps). Each product runs on the
//! calling thread: the callers run images or photos in parallel, and one thread per product
//! keeps every sum in a fixed order, so results never depend on the number of threads.

use gemm::Parallelism;

/// A row-major matrix operand: `rows x cols` values with the given row and column strides.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    data: &'a [f32],
    row_stride: isize,
    col_stride: isize,
}

impl<'a> Mat<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Mat {
            data,
            row_stride: cols as isize,
            col_stride: 1,
        }
    }
    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Mat {
            data,
            row_stride: 1,
            col_stride: cols as isize,
        }
    }
}

/// `dst [m][n] (+)= lhs [m][k] * rhs [k][n]` (`+=` when `accumulate`), `dst` row-major, on
/// the calling thread.
pub fn matmul(dst: &mut [f32], accumulate: bool, lhs: Mat, rhs: Mat, m: usize, k: usize, n: usize) {
    assert!(dst.len() >= m * n);
    let last = |a: &Mat, r: usize, c: usize| {
        (r as isize - 1) * a.row_stride + (c as isize - 1) * a.col_stride
    };
    assert!(m == 0 || k == 0 || (last(&lhs, m, k) as usize) < lhs.data.len());
    assert!(k == 0 || n == 0 || (last(&rhs, k, n) as usize) < rhs.data.len());
    // SAFETY: the asserts keep every index gemm reads or writes inside the slices (strides
    // are non-negative), and `dst` is a unique borrow that aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride,
            lhs.row_stride,
            rhs.data.as_ptr(),
            rhs.col_stride,
            rhs.row_stride,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_of_plain_and_transposed_operands() {
        // [[1, 2, 3], [4, 5, 6]] x [[1, 0], [0, 1], [1, 1]] = [[4, 5], [10, 11]].
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let mut out = [0.0f32; 4];
        matmul(&mut out, false, Mat::rows(&a, 3), Mat::rows(&b, 2), 2, 3, 2);
        assert_eq!(out, [4.0, 5.0, 10.0, 11.0]);
        // The same right operand stored transposed ([2][3]), added onto the result.
        let bt = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        matmul(
            &mut out,
            true,
            Mat::rows(&a, 3),
            Mat::transposed(&bt, 3),
            2,
            3,
            2,
        );
        assert_eq!(out, [8.0, 10.0, 20.0, 22.0]);
    }
}
