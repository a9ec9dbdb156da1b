//! IDX files (the MNIST format) and the MNIST directory loader.
//!
//! An IDX file is a 4-byte magic (`0x00 0x00 <type> <ndims>`), `ndims` big-endian `u32`
//! dimensions, then the items row-major. Only unsigned bytes (type `0x08`) are supported,
//! which is what MNIST uses. Files may be gzip-compressed. Sizes are checked against the
//! header before anything large is allocated: a header that claims more data than the file
//! holds, absurd dimensions or trailing bytes are errors naming the file.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::RawData;
use crate::{Error, Result};

/// Largest payload (product of the dimensions) accepted in one IDX file: 4 GiB.
pub const MAX_IDX_BYTES: usize = 1 << 32;

/// The content of an unsigned-byte IDX file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions from the header (first = number of items).
    pub dims: Vec<usize>,
    /// The items, row-major.
    pub data: Vec<u8>,
}

/// Read an unsigned-byte IDX file, gzip-compressed or not.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    parse_reader(BufReader::new(file), file_len, path)
}

/// Parse the bytes of an unsigned-byte IDX file held in memory (gzip-compressed or not), with
/// the same checks and messages as [`read_idx`]; `path` is only used in error messages.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    parse_reader(bytes, bytes.len() as u64, path)
}

/// The IDX parser over a buffered source of `file_len` (possibly compressed) bytes.
fn parse_reader<R: BufRead>(mut buf: R, file_len: u64, path: &Path) -> Result<IdxArray> {
    let head = buf.fill_buf().map_err(|e| Error::io(path, e))?;
    if head.is_empty() {
        return Err(Error::data(
            path,
            0,
            "file is empty (expected an IDX header)",
        ));
    }
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read + '_> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(buf))
    } else {
        Box::new(buf)
    };
    let read_err = |e: std::io::Error| {
        if gz {
            Error::data(path, 0, format!("corrupt gzip stream: {e}"))
        } else {
            Error::io(path, e)
        }
    };

    let mut magic = [0u8; 4];
    read_full(&mut reader, &mut magic, path, "the 4-byte IDX magic", gz)?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(Error::data(
            path,
            0,
            format!(
                "bad IDX magic {:02x}{:02x}{:02x}{:02x}: expected 0000 then type and rank \
                 (e.g. 00000803 for images, 00000801 for labels)",
                magic[0], magic[1], magic[2], magic[3]
            ),
        ));
    }
    if magic[2] != 0x08 {
        return Err(Error::data(
            path,
            0,
            format!(
                "IDX data type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
                magic[2]
            ),
        ));
    }
    let ndims = magic[3] as usize;
    if !(1..=4).contains(&ndims) {
        return Err(Error::data(
            path,
            0,
            format!("IDX rank {ndims} is not in 1..=4"),
        ));
    }
    let mut dims = Vec::with_capacity(ndims);
    for k in 0..ndims {
        let mut b = [0u8; 4];
        read_full(
            &mut reader,
            &mut b,
            path,
            &format!("dimension {k} of the IDX header"),
            gz,
        )?;
        dims.push(u32::from_be_bytes(b) as usize);
    }
    let total = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let total = match total {
        Some(t) if t <= MAX_IDX_BYTES => t,
        _ => {
            return Err(Error::data(
                path,
                0,
                format!("IDX dimensions {dims:?} are absurd (more than {MAX_IDX_BYTES} bytes)"),
            ))
        }
    };
    let header = 4 + 4 * ndims as u64;
    if !gz {
        let have = file_len.saturating_sub(header);
        if have < total as u64 {
            return Err(Error::data(
                path,
                0,
                format!(
                    "truncated: the header claims dimensions {dims:?} = {total} bytes of data \
                     but the file holds only {have}"
                ),
            ));
        }
        if have > total as u64 {
            return Err(Error::data(
                path,
                0,
                format!(
                    "{} unexpected trailing bytes after the {total} bytes of data of dimensions \
                     {dims:?}",
                    have - total as u64
                ),
            ));
        }
    }
    // For gzip the decompressed size is unknown: grow with the data actually present, so a
    // lying header cannot make us allocate more than the stream holds (plus a bounded start).
    let mut data = Vec::with_capacity(total.min(1 << 26));
    (&mut reader)
        .take(total as u64 + 1)
        .read_to_end(&mut data)
        .map_err(read_err)?;
    if data.len() < total {
        return Err(Error::data(
            path,
            0,
            format!(
                "truncated: the header claims dimensions {dims:?} = {total} bytes of data but \
                 the file holds only {}",
                data.len()
            ),
        ));
    }
    if data.len() > total {
        return Err(Error::data(
            path,
            0,
            format!(
                "unexpected trailing bytes after the {total} bytes of data of dimensions {dims:?}"
            ),
        ));
    }
    Ok(IdxArray { dims, data })
}

fn read_full(r: &mut dyn Read, buf: &mut [u8], path: &Path, what: &str, gz: bool) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::data(path, 0, format!("truncated: the file ends before {what}"))
        } else if gz {
            Error::data(path, 0, format!("corrupt gzip stream: {e}"))
        } else {
            Error::io(path, e)
        }
    })
}

/// Read an image file and a label file into raw samples with pixels scaled to [0, 1].
pub fn read_images_labels(images: &Path, labels: &Path) -> Result<RawData> {
    let img = read_idx(images)?;
    check_images(&img, images)?;
    let lab = read_idx(labels)?;
    images_labels(img, images, lab, labels)
}

fn check_images(img: &IdxArray, images: &Path) -> Result<()> {
    if img.dims.len() < 2 {
        return Err(Error::data(
            images,
            0,
            format!(
                "expected an image file (rank >= 2), found dimensions {:?}",
                img.dims
            ),
        ));
    }
    Ok(())
}

/// Pair a parsed image array with a parsed label array (checking ranks and counts) into raw
/// samples with pixels scaled to [0, 1]; the paths are only used in error messages.
pub fn images_labels(
    img: IdxArray,
    images: &Path,
    lab: IdxArray,
    labels: &Path,
) -> Result<RawData> {
    check_images(&img, images)?;
    if lab.dims.len() != 1 {
        return Err(Error::data(
            labels,
            0,
            format!(
                "expected a label file (rank 1), found dimensions {:?}",
                lab.dims
            ),
        ));
    }
    let n = img.dims[0];
    if lab.dims[0] != n {
        return Err(Error::data(
            labels,
            0,
            format!(
                "{} labels but {} has {n} images",
                lab.dims[0],
                images.display()
            ),
        ));
    }
    if n == 0 {
        return Err(Error::data(images, 0, "the file holds no images"));
    }
    let d: usize = img.dims[1..].iter().product();
    if d == 0 {
        return Err(Error::data(
            images,
            0,
            format!("the images have no pixels (dimensions {:?})", img.dims),
        ));
    }
    super::check_dense(images, n, d)?;
    let x: Vec<f32> = img.data.iter().map(|&p| p as f32 / 255.0).collect();
    let y: Vec<f64> = lab.data.iter().map(|&l| l as f64).collect();
    Ok(RawData {
        origin: labels.to_path_buf(),
        x,
        n_features: d,
        y,
        lines: vec![0; n],
    })
}

/// `dir/name` or `dir/name.gz`, whichever exists.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(Error::data(
        &plain,
        0,
        format!(
            "MNIST file not found (looked for {name} and {name}.gz in {})",
            dir.display()
        ),
    ))
}

/// Load MNIST from a directory holding `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (each optionally `.gz`).
pub fn load_mnist_dir(dir: &Path) -> Result<(RawData, RawData)> {
    if !dir.is_dir() {
        return Err(Error::data(
            dir,
            0,
            "MNIST path must be a directory with the four IDX files",
        ));
    }
    let train = read_images_labels(
        &find(dir, "train-images-idx3-ubyte")?,
        &find(dir, "train-labels-idx1-ubyte")?,
    )?;
    let test = read_images_labels(
        &find(dir, "t10k-images-idx3-ubyte")?,
        &find(dir, "t10k-labels-idx1-ubyte")?,
    )?;
    if test.n_features != train.n_features {
        return Err(Error::data(
            dir,
            0,
            format!(
                "test images have {} pixels but training images have {}",
                test.n_features, train.n_features
            ),
        ));
    }
    Ok((train, test))
}
