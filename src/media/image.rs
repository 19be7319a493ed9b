//! Images people paste (screenshots of tracebacks, of code): the format and size are read
//! from the header and checked before anything decodes the pixels, so that a
//! decompression bomb or a vector image never reaches a decoder.

/// OpenAI's own limit for one image.
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;
/// About 7,000 x 7,000: larger than any screen, far below what exhausts memory.
pub const MAX_IMAGE_PIXELS: u64 = 50_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Gif,
    Webp,
    Bmp,
}

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Gif => "image/gif",
            Format::Webp => "image/webp",
            Format::Bmp => "image/bmp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: Format,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImageError {
    #[error("the image is empty")]
    Empty,
    #[error("the image is {0} bytes; at most {MAX_IMAGE_BYTES} are accepted")]
    TooLarge(usize),
    #[error("the image is {0} x {1} pixels; at most {MAX_IMAGE_PIXELS} pixels are accepted")]
    TooManyPixels(u32, u32),
    #[error("SVG images are not accepted; send a PNG or JPEG")]
    Svg,
    #[error("not a PNG, JPEG, GIF, WebP or BMP image")]
    Unsupported,
    #[error("the image header is damaged: {0}")]
    Damaged(&'static str),
}

/// Checks an image's bytes and reads its format and size from the header.
pub fn inspect(bytes: &[u8]) -> Result<ImageInfo, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ImageError::TooLarge(bytes.len()));
    }
    let info = header(bytes)?;
    if info.width == 0 || info.height == 0 {
        return Err(ImageError::Damaged("zero width or height"));
    }
    if info.width as u64 * info.height as u64 > MAX_IMAGE_PIXELS {
        return Err(ImageError::TooManyPixels(info.width, info.height));
    }
    Ok(info)
}

fn header(b: &[u8]) -> Result<ImageInfo, ImageError> {
    let be32 = |i: usize| b.get(i..i + 4).map(|s| u32::from_be_bytes(s.try_into().expect("4 bytes")));
    let le16 = |i: usize| b.get(i..i + 2).map(|s| u16::from_le_bytes(s.try_into().expect("2 bytes")) as u32);
    let le32 = |i: usize| b.get(i..i + 4).map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")));
    let short = ImageError::Damaged("too short");
    let info = |format, width: Option<u32>, height: Option<u32>| match (width, height) {
        (Some(width), Some(height)) => Ok(ImageInfo { format, width, height }),
        _ => Err(ImageError::Damaged("too short")),
    };
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return info(Format::Png, be32(16), be32(20));
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return info(Format::Gif, le16(6), le16(8));
    }
    if b.starts_with(b"BM") && b.len() >= 26 {
        let height = le32(22).map(|h| (h as i32).unsigned_abs());
        return info(Format::Bmp, le32(18), height);
    }
    if b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        return match b.get(12..16) {
            Some(b"VP8X") => {
                let le24 = |i: usize| b.get(i..i + 3).map(|s| u32::from_le_bytes([s[0], s[1], s[2], 0]) + 1);
                info(Format::Webp, le24(24), le24(27))
            }
            Some(b"VP8L") => {
                let bits = le32(21).ok_or(short)?;
                info(Format::Webp, Some((bits & 0x3fff) + 1), Some(((bits >> 14) & 0x3fff) + 1))
            }
            Some(b"VP8 ") => info(Format::Webp, le16(26).map(|w| w & 0x3fff), le16(28).map(|h| h & 0x3fff)),
            _ => Err(ImageError::Damaged("unknown WebP chunk")),
        };
    }
    if b.starts_with(&[0xff, 0xd8]) {
        return jpeg(b);
    }
    let head = String::from_utf8_lossy(&b[..b.len().min(1024)]).to_ascii_lowercase();
    if head.contains("<svg") || (head.trim_start().starts_with("<?xml") && head.contains("svg")) {
        return Err(ImageError::Svg);
    }
    Err(ImageError::Unsupported)
}

/// A JPEG's size is in its first start-of-frame marker.
fn jpeg(b: &[u8]) -> Result<ImageInfo, ImageError> {
    let mut i = 2;
    while i + 9 < b.len() {
        if b[i] != 0xff {
            return Err(ImageError::Damaged("bad JPEG marker"));
        }
        let marker = b[i + 1];
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        let is_sof = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
        if is_sof {
            let height = u16::from_be_bytes([b[i + 5], b[i + 6]]) as u32;
            let width = u16::from_be_bytes([b[i + 7], b[i + 8]]) as u32;
            return Ok(ImageInfo { format: Format::Jpeg, width, height });
        }
        i += 2 + len;
    }
    Err(ImageError::Damaged("no JPEG frame header"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend(width.to_be_bytes());
        b.extend(height.to_be_bytes());
        b.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    #[test]
    fn sizes_come_from_headers_and_bombs_are_refused() {
        assert_eq!(inspect(&png(800, 600)).unwrap(), ImageInfo { format: Format::Png, width: 800, height: 600 });
        assert_eq!(inspect(&png(100_000, 100_000)), Err(ImageError::TooManyPixels(100_000, 100_000)));
        assert_eq!(inspect(b"GIF89a\x10\x00\x20\x00").unwrap().height, 32);
        assert_eq!(inspect(b""), Err(ImageError::Empty));
        assert_eq!(inspect(b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>"), Err(ImageError::Svg));
        assert_eq!(inspect(b"hello, world"), Err(ImageError::Unsupported));
        assert_eq!(inspect(&png(10, 10)[..18]), Err(ImageError::Damaged("too short")));
        assert!(matches!(inspect(&vec![0u8; MAX_IMAGE_BYTES + 1]), Err(ImageError::TooLarge(_))));
    }

    #[test]
    fn a_jpeg_frame_header_is_found_past_other_segments() {
        let mut b = vec![0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0];
        b.extend([0xff, 0xc0, 0, 11, 8, 0x01, 0x2c, 0x01, 0x90, 3, 0, 0, 0]);
        assert_eq!(inspect(&b).unwrap(), ImageInfo { format: Format::Jpeg, width: 400, height: 300 });
    }
}
