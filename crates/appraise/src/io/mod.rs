//! Input and output: the model file (and the reader of the Houses dataset's own formats),
//! atomic writes, the columns of written prices, and pricing requests.

pub mod artifact;
pub mod atomic;
pub mod legacy;
pub mod output;
pub mod pricer;
