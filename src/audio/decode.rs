//! Decode any common call-recording format into planar f32 channels at the
//! file's own sample rate: WAV (PCM 8/16/24/32-bit, float, µ-law, A-law), MP3,
//! OGG/Vorbis, FLAC and AAC/M4A through symphonia; GSM 06.10 (raw `.gsm` and WAV49)
//! through [`super::gsm`]. Channels are kept: stereo
//! calls carry agent and customer on separate legs.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::{gsm, Audio, AudioError};

/// Formats seen on phone systems that we recognise but cannot decode, with the
/// magic bytes that identify them.
const KNOWN_UNSUPPORTED: &[(&[u8], &str)] =
    &[(b"#!AMR-WB\n", "AMR-WB"), (b"#!AMR\n", "AMR-NB"), (b"#!SILK", "SILK"), (b".snd", "Sun/NeXT AU")];

/// Decode the file at `path`. `ext` is a hint taken from the object key.
pub fn decode_file(path: &Path, ext: Option<&str>, max_duration: Duration) -> Result<Audio, AudioError> {
    decode_counted(path, ext, max_duration).map(|(audio, _)| audio)
}

/// Consecutive unreadable packets after which the stream is taken to end there.
const MAX_CONSECUTIVE_BAD: u64 = 64;

/// [`decode_file`], also returning how many damaged packets were skipped.
pub fn decode_counted(path: &Path, ext: Option<&str>, max_duration: Duration) -> Result<(Audio, u64), AudioError> {
    let mut channels: Vec<Vec<f32>> = Vec::new();
    let d = decode_stream(path, ext, max_duration, &mut |_, planes| {
        if channels.is_empty() {
            channels = vec![Vec::new(); planes.len()];
        }
        for (c, p) in channels.iter_mut().zip(planes) {
            c.extend_from_slice(p);
        }
        Ok(())
    })?;
    Ok((Audio { sample_rate: d.sample_rate, channels }, d.skipped_packets))
}

/// Where [`decode_stream`] hands the samples: the file's rate and one packet's
/// planar channels.
pub type Sink<'a> = dyn FnMut(u32, &[&[f32]]) -> Result<(), AudioError> + 'a;

/// What [`decode_stream`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoded {
    pub sample_rate: u32,
    pub channels: usize,
    pub frames: u64,
    pub skipped_packets: u64,
}

/// The most frames handed to the sink at once by the GSM path.
const GSM_PIECE: usize = 8000;

/// Decode the file at `path`, handing the samples to `sink` as they come
/// (planar channels of equal length, at the file's own rate, one packet at a
/// time, with the sample rate), so that no copy of the whole recording at its
/// own rate is made. The rate and the channel count are the same for every call.
///
/// The rule for damage in the middle of a file: a packet that cannot be read or
/// decoded is skipped and counted, and decoding goes on with the next one (the
/// demuxer resynchronises); only after 64 unreadable packets in a row does the
/// stream end there. The job fails as corrupt when more than half of the packets
/// are damaged. The count is stored with the audio figures
/// (`audio_quality.skipped_packets`), so a call with gaps is never mistaken for a
/// whole one, and never cut short silently at the first bad packet.
pub fn decode_stream(
    path: &Path,
    ext: Option<&str>,
    max_duration: Duration,
    sink: &mut Sink<'_>,
) -> Result<Decoded, AudioError> {
    let mut file = File::open(path).map_err(|e| AudioError::Io(e.to_string()))?;
    let len = file.metadata().map_err(|e| AudioError::Io(e.to_string()))?.len();
    if len == 0 {
        return Err(AudioError::Empty);
    }
    let mut head = [0u8; 64];
    let n = file.read(&mut head).map_err(|e| AudioError::Io(e.to_string()))?;
    if let Some(name) = sniff_unsupported(&head[..n]) {
        return Err(AudioError::Unsupported(format!(
            "{name} audio is not supported; convert it to WAV, MP3, OGG, FLAC or M4A"
        )));
    }
    drop(file);
    if let Some(audio) = decode_gsm(path, ext, &head[..n], max_duration)? {
        // GSM frames are decoded whole (8 kHz mono: 115 MB an hour), then streamed.
        let samples = &audio.channels[0];
        for piece in samples.chunks(GSM_PIECE) {
            sink(audio.sample_rate, &[piece])?;
        }
        return Ok(Decoded {
            sample_rate: audio.sample_rate,
            channels: 1,
            frames: samples.len() as u64,
            skipped_packets: 0,
        });
    }

    let file = File::open(path).map_err(|e| AudioError::Io(e.to_string()))?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = ext {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &FormatOptions { enable_gapless: true, ..Default::default() }, &MetadataOptions::default())
        .map_err(|e| match e {
            SymError::Unsupported(_) => {
                AudioError::Unsupported("not a recognised audio container (WAV, MP3, OGG, FLAC, M4A)".into())
            }
            SymError::IoError(_) => AudioError::Corrupt(
                "no audio stream found before the end of the file: it is truncated or not audio".into(),
            ),
            other => AudioError::Corrupt(format!("unreadable container: {other}")),
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::Unsupported("the container holds no audio track".into()))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let sample_rate = params
        .sample_rate
        .filter(|&r| r > 0)
        .ok_or_else(|| AudioError::Corrupt("the audio track declares no sample rate".into()))?;
    if !(1_000..=384_000).contains(&sample_rate) {
        return Err(AudioError::Corrupt(format!("implausible sample rate {sample_rate} Hz")));
    }
    // PCM containers declare an exact frame count: check it against the limit
    // before decoding a byte, and later against what the file really held.
    let is_pcm = is_pcm_codec(params.codec);
    let declared_frames =
        params.n_frames.or_else(|| if head.starts_with(b"OggS") { ogg_total_frames(path) } else { None });
    if let Some(frames) = declared_frames {
        let declared = frames as f64 / sample_rate as f64;
        if is_pcm && declared > max_duration.as_secs_f64() {
            return Err(AudioError::TooLong { seconds: declared, max: max_duration.as_secs_f64() });
        }
    }

    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| AudioError::Unsupported(format!("no decoder for this codec: {e}")))?;

    let max_frames = (max_duration.as_secs_f64() * sample_rate as f64) as u64;
    let mut n_channels: Option<usize> = None;
    let mut planar: Vec<Vec<f32>> = Vec::new();
    let mut frames_total = 0u64;
    let mut packets = 0u64;
    let mut bad_packets = 0u64;
    let mut consecutive_bad = 0u64;
    let mut sample_buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(SymError::IoError(e)) => return Err(AudioError::Io(e.to_string())),
            Err(e) => {
                // A damaged packet in the middle: skip it, count it, and read on (the
                // demuxer looks for the next sync point) unless it cannot recover.
                bad_packets += 1;
                consecutive_bad += 1;
                if bad_packets > 16 && bad_packets * 2 > packets {
                    return Err(AudioError::Corrupt(format!("the stream is damaged: {e}")));
                }
                if consecutive_bad >= MAX_CONSECUTIVE_BAD {
                    tracing::warn!(skipped = bad_packets, "the stream does not recover from damage; it ends here");
                    break;
                }
                continue;
            }
        };
        consecutive_bad = 0;
        if packet.track_id() != track_id {
            continue;
        }
        packets += 1;
        match decoder.decode(&packet) {
            Ok(buf) => {
                let spec = *buf.spec();
                let n_ch = spec.channels.count();
                if n_ch == 0 {
                    continue;
                }
                match n_channels {
                    None => {
                        n_channels = Some(n_ch);
                        planar = vec![Vec::new(); n_ch];
                    }
                    Some(c) if c != n_ch => {
                        return Err(AudioError::Corrupt("the channel count changes mid-stream".into()));
                    }
                    Some(_) => {}
                }
                let frames = buf.frames();
                let needed = buf.capacity() as u64;
                let sb = match &mut sample_buf {
                    Some(sb) if sb.capacity() as u64 >= needed * n_ch as u64 => sb,
                    _ => sample_buf.insert(SampleBuffer::<f32>::new(needed, spec)),
                };
                sb.copy_interleaved_ref(buf);
                let samples = &sb.samples()[..frames * n_ch];
                for (ch, plane) in planar.iter_mut().enumerate() {
                    plane.clear();
                    plane.extend(samples.iter().skip(ch).step_by(n_ch));
                }
                frames_total += frames as u64;
                if frames_total > max_frames {
                    return Err(AudioError::TooLong {
                        seconds: frames_total as f64 / sample_rate as f64,
                        max: max_duration.as_secs_f64(),
                    });
                }
                let planes: Vec<&[f32]> = planar.iter().map(|p| p.as_slice()).collect();
                sink(sample_rate, &planes)?;
            }
            Err(SymError::DecodeError(_)) | Err(SymError::IoError(_)) => {
                bad_packets += 1;
            }
            Err(e) => return Err(AudioError::Corrupt(format!("decoder failed: {e}"))),
        }
    }

    let frames = frames_total as usize;
    if packets > 0 && bad_packets * 2 > packets {
        return Err(AudioError::Corrupt(format!(
            "{bad_packets} of {packets} packets could not be decoded: the file is damaged or not audio"
        )));
    }
    if frames == 0 {
        return Err(AudioError::NoSamples);
    }
    if is_pcm {
        if let Some(declared) = declared_frames {
            // Allow the rounding of a final partial block.
            if declared > frames as u64 + sample_rate as u64 / 10 {
                return Err(AudioError::Truncated {
                    declared: declared as f64 / sample_rate as f64,
                    found: frames as f64 / sample_rate as f64,
                });
            }
        }
    }
    // Some demuxers drop damaged pages without an error: a compressed stream that
    // decodes clearly shorter than its container declares lost audio, and that is
    // counted too (as one skipped stretch).
    if !is_pcm {
        if let Some(declared) = declared_frames {
            let missing = declared.saturating_sub(frames as u64) as f64 / sample_rate as f64;
            if missing > 0.5 {
                tracing::warn!(missing_seconds = missing, "the stream decodes shorter than its container declares");
                bad_packets += 1;
            }
        }
    }
    if bad_packets > 0 {
        tracing::warn!(skipped = bad_packets, packets, "damaged packets skipped");
    }
    Ok(Decoded { sample_rate, channels: n_channels.unwrap_or(0), frames: frames_total, skipped_packets: bad_packets })
}

/// GSM 06.10, which symphonia cannot decode: a WAV whose format tag is
/// `0x0031` (WAV49), or raw 33-byte frames (by the `gsm` extension or the frames'
/// `0xD` signature). `None` when the file is neither.
fn decode_gsm(path: &Path, ext: Option<&str>, head: &[u8], max: Duration) -> Result<Option<Audio>, AudioError> {
    let is_wav = head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WAVE");
    let raw_hint = ext.is_some_and(|e| e.eq_ignore_ascii_case("gsm"));
    let sniff_raw = head.first().is_some_and(|b| b >> 4 == 0xD);
    if !is_wav && !raw_hint && !sniff_raw {
        return Ok(None);
    }
    if is_wav {
        // The fmt chunk sits near the start; read only that much unless it is GSM.
        let mut first = vec![0u8; 4096];
        let mut f = File::open(path).map_err(|e| AudioError::Io(e.to_string()))?;
        let n = read_up_to(&mut f, &mut first)?;
        if !wav_tag_is_gsm(&first[..n]) {
            return Ok(None);
        }
    }
    let data = std::fs::read(path).map_err(|e| AudioError::Io(e.to_string()))?;
    if is_wav {
        let (_, channels, rate, body) = gsm::wav_format(&data)
            .ok_or_else(|| AudioError::Corrupt("GSM 6.10 WAV without a readable data chunk".into()))?;
        if channels != 1 {
            return Err(AudioError::Unsupported(format!("GSM 6.10 WAV with {channels} channels (only mono exists)")));
        }
        if !(1_000..=48_000).contains(&rate) {
            return Err(AudioError::Corrupt(format!("implausible sample rate {rate} Hz")));
        }
        return gsm::decode_wav49(body, rate, max.as_secs_f64()).map(Some);
    }
    if raw_hint || gsm::is_raw_gsm(&data) {
        return gsm::decode_raw(&data, max.as_secs_f64()).map(Some);
    }
    Ok(None)
}

/// The `fmt ` chunk of the first bytes of a WAV names GSM 6.10.
fn wav_tag_is_gsm(first: &[u8]) -> bool {
    let mut pos = 12;
    while pos + 10 <= first.len() {
        let size = u32::from_le_bytes([first[pos + 4], first[pos + 5], first[pos + 6], first[pos + 7]]) as usize;
        if &first[pos..pos + 4] == b"fmt " {
            return u16::from_le_bytes([first[pos + 8], first[pos + 9]]) == gsm::WAVE_FORMAT_GSM610;
        }
        pos = pos.saturating_add(8 + size + (size & 1));
    }
    false
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> Result<usize, AudioError> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(AudioError::Io(e.to_string())),
        }
    }
    Ok(n)
}

/// An Ogg stream's length in samples: the granule position of its last page.
fn ogg_total_frames(path: &Path) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let tail = len.min(65_536);
    f.seek(SeekFrom::Start(len - tail)).ok()?;
    let mut buf = vec![0u8; tail as usize];
    f.read_exact(&mut buf).ok()?;
    let at = buf.windows(4).rposition(|w| w == b"OggS")?;
    let granule = u64::from_le_bytes(buf.get(at + 6..at + 14)?.try_into().ok()?);
    (granule > 0 && granule != u64::MAX).then_some(granule)
}

fn sniff_unsupported(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"OggS") && head.get(28..36) == Some(b"OpusHead") {
        return Some("Ogg/Opus");
    }
    KNOWN_UNSUPPORTED.iter().find(|(magic, _)| head.starts_with(magic)).map(|(_, name)| *name)
}

fn is_pcm_codec(codec: symphonia::core::codecs::CodecType) -> bool {
    use symphonia::core::codecs::*;
    [
        CODEC_TYPE_PCM_S8,
        CODEC_TYPE_PCM_U8,
        CODEC_TYPE_PCM_S16LE,
        CODEC_TYPE_PCM_S16BE,
        CODEC_TYPE_PCM_S24LE,
        CODEC_TYPE_PCM_S24BE,
        CODEC_TYPE_PCM_S32LE,
        CODEC_TYPE_PCM_S32BE,
        CODEC_TYPE_PCM_F32LE,
        CODEC_TYPE_PCM_F32BE,
        CODEC_TYPE_PCM_F64LE,
        CODEC_TYPE_PCM_F64BE,
        CODEC_TYPE_PCM_ALAW,
        CODEC_TYPE_PCM_MULAW,
        CODEC_TYPE_PCM_U16LE,
        CODEC_TYPE_PCM_U24LE,
        CODEC_TYPE_PCM_U32LE,
    ]
    .contains(&codec)
}
