//! Transcript file formats for `callscribe transcribe`: JSON (everything),
//! SRT and WebVTT subtitles, plain text and TSV, with speakers.

use crate::asr::Transcript;
use crate::audio::AudioQuality;
use crate::diarize::metrics::CallMetrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Srt,
    Vtt,
    Txt,
    Tsv,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Txt => "txt",
            Format::Tsv => "tsv",
        }
    }
}

fn stamp(t: f64, sep: char) -> String {
    let ms = (t.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}{sep}{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// Render one transcript.
pub fn render(format: Format, source: &str, t: &Transcript, quality: &AudioQuality, metrics: &CallMetrics) -> String {
    let who = |s: &crate::asr::Segment| s.speaker.clone().unwrap_or_else(|| "speaker".into());
    match format {
        Format::Json => {
            let v = serde_json::json!({
                "source": source,
                "language": t.language,
                "language_probability": t.language_probability,
                "code_mixed": crate::asr::is_code_mixed(&t.full_text()),
                "model": t.model,
                "duration_seconds": quality.duration_seconds,
                "processing_seconds": t.processing_seconds,
                "text": t.full_text(),
                "segments": t.segments,
                "speaker_metrics": metrics,
                "audio_quality": quality,
            });
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        Format::Srt => t
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "{}\n{} --> {}\n[{}] {}\n\n",
                    i + 1,
                    stamp(s.start, ','),
                    stamp(s.end, ','),
                    who(s),
                    s.text.trim()
                )
            })
            .collect(),
        Format::Vtt => {
            let mut out = String::from("WEBVTT\n\n");
            for s in &t.segments {
                out.push_str(&format!(
                    "{} --> {}\n<v {}>{}\n\n",
                    stamp(s.start, '.'),
                    stamp(s.end, '.'),
                    who(s),
                    s.text.trim()
                ));
            }
            out
        }
        Format::Txt => t.segments.iter().map(|s| format!("{}: {}\n", who(s), s.text.trim())).collect(),
        Format::Tsv => {
            let mut out = String::from("start\tend\tspeaker\ttext\n");
            for s in &t.segments {
                let text = s.text.trim().replace(['\t', '\n'], " ");
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\n",
                    (s.start * 1000.0).round(),
                    (s.end * 1000.0).round(),
                    who(s),
                    text
                ));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::Segment;

    #[test]
    fn subtitle_formats() {
        let t = Transcript {
            segments: vec![Segment {
                start: 61.5,
                end: 3725.25,
                text: " Hello there".into(),
                words: vec![],
                confidence: 0.9,
                no_speech_probability: 0.0,
                speaker: Some("agent".into()),
                channel: 0,
            }],
            ..Default::default()
        };
        let q = AudioQuality::unknown();
        let m = CallMetrics::default();
        assert_eq!(render(Format::Srt, "x", &t, &q, &m), "1\n00:01:01,500 --> 01:02:05,250\n[agent] Hello there\n\n");
        assert!(render(Format::Vtt, "x", &t, &q, &m).contains("00:01:01.500 --> 01:02:05.250\n<v agent>Hello there"));
        assert_eq!(render(Format::Txt, "x", &t, &q, &m), "agent: Hello there\n");
        assert!(render(Format::Tsv, "x", &t, &q, &m).ends_with("61500\t3725250\tagent\tHello there\n"));
        let j: serde_json::Value = serde_json::from_str(&render(Format::Json, "x", &t, &q, &m)).unwrap();
        assert_eq!(j["segments"][0]["speaker"], "agent");
    }
}
