//! GSM 06.10 as the PBX records it, checked against a reference decoder: sox
//! (libgsm) encodes real speech (espeak-ng) as raw `.gsm` and as WAV GSM 6.10
//! (WAV49), then decodes both to 16-bit PCM; callscribe decodes the same files.
//! The two decodes must agree to within 60 dB SNR (measured: identical samples,
//! the decoder follows the standard's fixed-point arithmetic bit for bit).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use callscribe::audio::decode::decode_file;

fn sox(args: &[&str]) {
    let st = Command::new("sox").args(args).status().expect("sox is needed (.ci/run installs it)");
    assert!(st.success(), "sox {args:?}");
}

fn pcm16(path: &Path) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).unwrap();
    r.samples::<i16>().map(|s| s.unwrap() as f32 / 32768.0).collect()
}

/// SNR of `ours` against `reference`, in dB (∞ when identical).
fn snr_db(reference: &[f32], ours: &[f32]) -> f64 {
    let signal: f64 = reference.iter().map(|&x| (x as f64).powi(2)).sum();
    let noise: f64 = reference.iter().zip(ours).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
    if noise == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}

#[test]
fn gsm_decodes_as_the_reference_decoder_does() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let st = Command::new("espeak-ng")
        .args(["-v", "en-gb", "-s", "150", "-w", &p("speech.wav")])
        .arg("Hello, this is City Finance calling about your instalment of five thousand rupees.")
        .status()
        .expect("espeak-ng is needed");
    assert!(st.success());
    sox(&[&p("speech.wav"), "-r", "8000", "-c", "1", &p("call.gsm")]);
    sox(&[&p("speech.wav"), "-r", "8000", "-c", "1", "-e", "gsm-full-rate", &p("call-gsm.wav")]);
    for (file, ext) in [("call.gsm", Some("gsm")), ("call-gsm.wav", Some("wav")), ("call.gsm", None)] {
        let reference_path = p(&format!("{file}.ref.wav"));
        sox(&[&p(file), "-e", "signed-integer", "-b", "16", &reference_path]);
        let reference = pcm16(Path::new(&reference_path));
        let ours = decode_file(Path::new(&p(file)), ext, Duration::from_secs(3600)).unwrap();
        assert_eq!(ours.sample_rate, 8000);
        assert_eq!(ours.channels.len(), 1);
        let ours = &ours.channels[0];
        assert_eq!(ours.len(), reference.len(), "{file}: sample count");
        let snr = snr_db(&reference, ours);
        eprintln!("{file} (hint {ext:?}): {} samples, SNR against sox {snr:.1} dB", ours.len());
        assert!(snr > 60.0, "{file}: SNR {snr:.1} dB");
        // Speech, not silence: the comparison means something.
        let rms = (ours.iter().map(|x| x * x).sum::<f32>() / ours.len() as f32).sqrt();
        assert!(rms > 0.01, "{file}: rms {rms}");
    }
}

#[test]
fn damaged_gsm_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    // A `.gsm` name on bytes that are not GSM frames.
    let bad = dir.path().join("bad.gsm");
    std::fs::write(&bad, vec![0x42u8; 33 * 10]).unwrap();
    let e = decode_file(&bad, Some("gsm"), Duration::from_secs(60)).unwrap_err().to_string();
    assert!(e.contains("0xD signature"), "{e}");
    // Too long for the limit: refused before decoding.
    let long = dir.path().join("long.gsm");
    let frame = {
        let mut f = vec![0u8; 33];
        f[0] = 0xD0;
        f
    };
    std::fs::write(&long, frame.repeat(50 * 5)).unwrap();
    let e = decode_file(&long, Some("gsm"), Duration::from_secs(2)).unwrap_err().to_string();
    assert!(e.contains("too long"), "{e}");
}
