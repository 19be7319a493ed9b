//! Audio files (WAV, MP3, FLAC, OGG Vorbis) to the 16 kHz mono samples Whisper takes,
//! bounded in size and length before and while they are decoded.

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// OpenAI's own upload limit for transcriptions.
pub const MAX_AUDIO_BYTES: usize = 25 * 1024 * 1024;
/// Longer audio is refused: on a 2-core CPU ten minutes already take a minute or more.
pub const MAX_AUDIO_SECONDS: f64 = 600.0;
pub const SAMPLE_RATE: u32 = 16_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AudioError {
    #[error("the audio is empty")]
    Empty,
    #[error("the audio is {0} bytes; at most {MAX_AUDIO_BYTES} are accepted")]
    TooLarge(usize),
    #[error("the audio is {0:.0} seconds long; at most {MAX_AUDIO_SECONDS:.0} are accepted")]
    TooLong(f64),
    #[error("not a readable audio file (WAV, MP3, FLAC and OGG Vorbis are): {0}")]
    Unsupported(String),
    #[error("the audio holds no samples")]
    Silent,
}

/// Decodes a whole file to 16 kHz mono.
pub fn decode(bytes: &[u8]) -> Result<Vec<f32>, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    if bytes.len() > MAX_AUDIO_BYTES {
        return Err(AudioError::TooLarge(bytes.len()));
    }
    let unsupported = |e: SymphoniaError| AudioError::Unsupported(e.to_string());
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let probed = symphonia::default::get_probe()
        .format(&Hint::new(), source, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(unsupported)?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::Unsupported("no audio track".into()))?;
    let (track_id, params) = (track.id, track.codec_params.clone());
    let rate = params.sample_rate.filter(|r| *r > 0).ok_or_else(|| AudioError::Unsupported("no sample rate".into()))?;
    if let Some(frames) = params.n_frames {
        check_length(frames as usize, rate)?;
    }
    let mut decoder =
        symphonia::default::get_codecs().make(&params, &DecoderOptions::default()).map_err(unsupported)?;
    let mut mono = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => break,
            // A truncated or damaged stream ends where it stops being readable.
            Err(e) if !mono.is_empty() => {
                tracing::debug!(error = %e, "audio stream ends early");
                break;
            }
            Err(e) => return Err(unsupported(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(unsupported(e)),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        buf.copy_interleaved_ref(decoded);
        mono.extend(buf.samples().chunks(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32));
        check_length(mono.len(), rate)?;
    }
    if mono.is_empty() {
        return Err(AudioError::Silent);
    }
    Ok(resample(&mono, rate, SAMPLE_RATE))
}

fn check_length(frames: usize, rate: u32) -> Result<(), AudioError> {
    let secs = frames as f64 / rate as f64;
    if secs > MAX_AUDIO_SECONDS {
        return Err(AudioError::TooLong(secs));
    }
    Ok(())
}

/// Band-limited resampling: a Hann-windowed sinc, cut off below the lower Nyquist rate.
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() {
        return input.to_vec();
    }
    let ratio = to as f64 / from as f64;
    // The filter's cut-off, as a fraction of the input's Nyquist rate, with a little room.
    let cutoff = ratio.min(1.0) * 0.95;
    let half = (16.0 / cutoff).ceil() as i64;
    let out_len = (input.len() as f64 * ratio) as usize;
    (0..out_len)
        .map(|i| {
            let t = i as f64 / ratio;
            let center = t.floor() as i64;
            let mut sum = 0.0;
            for j in (center - half).max(0)..=(center + half).min(input.len() as i64 - 1) {
                let x = t - j as f64;
                let window = 0.5 + 0.5 * (std::f64::consts::PI * x / (half + 1) as f64).cos();
                sum += input[j as usize] as f64 * cutoff * sinc(cutoff * x) * window;
            }
            sum as f32
        })
        .collect()
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit mono WAV of `samples` at `rate`.
    fn wav(rate: u32, samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut out = b"RIFF".to_vec();
        out.extend((36 + data.len() as u32).to_le_bytes());
        out.extend(b"WAVEfmt ");
        out.extend(16u32.to_le_bytes());
        out.extend(1u16.to_le_bytes());
        out.extend(1u16.to_le_bytes());
        out.extend(rate.to_le_bytes());
        out.extend((rate * 2).to_le_bytes());
        out.extend(2u16.to_le_bytes());
        out.extend(16u16.to_le_bytes());
        out.extend(b"data");
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
        out
    }

    fn tone(rate: u32, hz: f64, secs: f64) -> Vec<i16> {
        (0..(rate as f64 * secs) as usize)
            .map(|i| ((2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin() * 10_000.0) as i16)
            .collect()
    }

    #[test]
    fn a_wav_at_another_rate_comes_out_at_16_khz_with_its_tone() {
        let pcm = decode(&wav(22_050, &tone(22_050, 440.0, 1.0))).unwrap();
        assert!((pcm.len() as i64 - 16_000).abs() <= 1, "{}", pcm.len());
        // The tone keeps its loudness (no aliasing or attenuation in the pass band).
        let rms = (pcm[1000..15000].iter().map(|x| x * x).sum::<f32>() / 14000.0).sqrt();
        assert!((rms - 10_000.0 / 32768.0 / 2f32.sqrt()).abs() < 0.01, "{rms}");
    }

    #[test]
    fn tones_above_the_new_nyquist_rate_are_filtered_out() {
        let pcm = resample(
            &tone(44_100, 12_000.0, 0.5).iter().map(|&s| s as f32 / 32768.0).collect::<Vec<_>>(),
            44_100,
            16_000,
        );
        let rms = (pcm[500..7500].iter().map(|x| x * x).sum::<f32>() / 7000.0).sqrt();
        assert!(rms < 0.01, "{rms}");
    }

    #[test]
    fn bad_audio_is_refused_with_its_reason() {
        assert_eq!(decode(b""), Err(AudioError::Empty));
        assert!(matches!(decode(b"definitely not audio, just text"), Err(AudioError::Unsupported(_))));
        let long = wav(8_000, &vec![0; 8_000 * 601]);
        assert!(matches!(decode(&long), Err(AudioError::TooLong(s)) if s > 600.0));
        let whole = wav(16_000, &tone(16_000, 300.0, 1.0));
        let truncated = &whole[..whole.len() / 2];
        let pcm = decode(truncated).unwrap();
        assert!(pcm.len() < 16_000 && pcm.len() > 1_000, "{}", pcm.len());
        assert!(decode(&whole[..30]).is_err());
    }
}
