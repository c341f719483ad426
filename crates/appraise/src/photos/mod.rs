//! The photos: decoding them into the tutorial's montages, the pretrained network's
//! embeddings, and the ridge price heads on them.

pub mod extractor;
pub mod montage;
pub mod table_photos;
