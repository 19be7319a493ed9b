//! Whisper's mel filter bank, computed as `librosa.filters.mel(sr=16000, n_fft=400,
//! n_mels=N)` computes it (Slaney's mel scale and area normalisation), which is how
//! openai-whisper made its `mel_filters.npz`. Computing it serves any Whisper, 80 or 128
//! bins; a test compares it with the file of the openai-whisper sdist.

const SAMPLE_RATE: f64 = 16_000.0;
const N_FFT: usize = 400;

/// `n_mels` rows of `N_FFT / 2 + 1` weights, row-major, as candle's `pcm_to_mel` takes them.
pub fn filters(n_mels: usize) -> Vec<f32> {
    let bins = N_FFT / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins).map(|i| i as f64 * SAMPLE_RATE / N_FFT as f64).collect();
    let (low, high) = (hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2.0));
    let mel_freqs: Vec<f64> =
        (0..n_mels + 2).map(|i| mel_to_hz(low + (high - low) * i as f64 / (n_mels + 1) as f64)).collect();
    let mut weights = vec![0f32; n_mels * bins];
    for m in 0..n_mels {
        let (left, center, right) = (mel_freqs[m], mel_freqs[m + 1], mel_freqs[m + 2]);
        let norm = 2.0 / (right - left);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - left) / (center - left);
            let upper = (right - f) / (right - center);
            weights[m * bins + k] = (lower.min(upper).max(0.0) * norm) as f32;
        }
    }
    weights
}

/// Slaney's scale: linear below 1 kHz, logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        mel * F_SP
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn scale_round_trips_and_rows_cover_their_band() {
        for hz in [0.0, 440.0, 1000.0, 4321.0, 8000.0] {
            assert!((super::mel_to_hz(super::hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
        let f = super::filters(80);
        assert_eq!(f.len(), 80 * 201);
        // Every filter has weight somewhere, and none is negative.
        for row in f.chunks(201) {
            assert!(row.iter().any(|&w| w > 0.0));
            assert!(row.iter().all(|&w| w >= 0.0));
        }
    }
}
