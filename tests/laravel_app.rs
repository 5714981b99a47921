//! The existing Laravel app beside callscribe, for real, on MariaDB and
//! PostgreSQL: the app's tables are made by Laravel's own Schema builder
//! (`tests/laravel/app.php`, illuminate/database from Debian), the app team
//! applies the migration `callscribe laravel-migration` prints, rows are
//! inserted through Eloquent as `CallRecordingService::uploadForProcessing`
//! does, the audio is the PBX's GSM 06.10 (raw `.gsm` and WAV49, made by sox),
//! `callscribe run --drain` processes them, and everything is read back through
//! Eloquent models with the app's `$casts`, relations and accessors. Also: the
//! app's own reprocess, a soft-deleted row left alone, a missing object failed
//! with a readable `processing_error`, and `queued` claimed before `pending`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use callscribe::asr::wer;
use common::{Env, Kind};
use serde_json::Value;

// No digits or brand names: the WER then measures recognition of GSM speech,
// not how "5,000" is written.
const AGENT: &str = "Good morning, this is Priya from the finance office. I am calling about your loan payment.";
const SUPPORTER: &str = "Yes, I know it is late. I will pay the full amount on Friday.";

fn models_dir() -> PathBuf {
    std::env::var("CALLSCRIBE_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
}

fn tiny_model() -> PathBuf {
    let p = models_dir().join("ggml-tiny.en.bin");
    assert!(p.exists(), "{} missing: run scripts/fetch-models.sh (.ci/run does)", p.display());
    p
}

/// The PHP client on this test's database.
struct App<'a> {
    driver: &'static str,
    database: String,
    env: &'a Env,
}

impl App<'_> {
    fn php(&self, args: &[&str]) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/laravel/app.php");
        let out = Command::new("php").arg(script).arg(self.driver).arg(&self.database).args(args).output().expect(
            "php is needed (apt-get install php-cli php-mysql php-pgsql php-illuminate-database; .ci/run does)",
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "php {args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
    }

    fn read(&self, id: i64) -> Value {
        serde_json::from_str(&self.php(&["read", &id.to_string()])).unwrap()
    }

    /// Put `file` where the worker's storage finds `key`, and insert the row as the app does.
    fn upload(&self, file: Option<&Path>, key: &str, ext: &str) -> i64 {
        if let Some(f) = file {
            let dest = self.env.recordings().join(key);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(f, dest).unwrap();
        }
        self.php(&["upload", key, "APX-1", ext, "call-recordings-bucket"]).trim().parse().unwrap()
    }
}

/// espeak-ng speaks the call (two voices, agent first) and sox encodes it as the
/// PBX does: raw GSM 06.10 and WAV GSM 06.10, 8 kHz mono.
fn gsm_call(dir: &Path) -> (PathBuf, PathBuf) {
    let speak = |voice: &str, text: &str, out: &Path| {
        let st = Command::new("espeak-ng").args(["-v", voice, "-s", "150", "-w"]).arg(out).arg(text).status().unwrap();
        assert!(st.success());
    };
    let (a, s, joined) = (dir.join("a.wav"), dir.join("s.wav"), dir.join("call.wav"));
    speak("en-gb", AGENT, &a);
    speak("en-us+f3", SUPPORTER, &s);
    let sox = |args: &[&str]| {
        let st = Command::new("sox").args(args).status().expect("sox is needed (.ci/run installs it)");
        assert!(st.success(), "sox {args:?}");
    };
    let p = |x: &Path| x.display().to_string();
    sox(&[&p(&a), &p(&s), &p(&joined)]);
    let (raw, wav49) = (dir.join("call.gsm"), dir.join("call-gsm.wav"));
    sox(&[&p(&joined), "-r", "8000", "-c", "1", &p(&raw)]);
    sox(&[&p(&joined), "-r", "8000", "-c", "1", "-e", "gsm-full-rate", &p(&wav49)]);
    (raw, wav49)
}

async fn laravel_app(kind: Kind, name: &str) {
    let env = Env::bare(kind, name).await;
    let database = env.url.rsplit('/').next().unwrap().to_string();
    let app = App { driver: if kind == Kind::Postgres { "pgsql" } else { "mysql" }, database, env: &env };
    let run_env = |c: &mut Command| {
        c.env("CALLSCRIBE_ASR__ENABLED", "true")
            .env("CALLSCRIBE_ASR__MODEL", tiny_model())
            .env("CALLSCRIBE_ASR__THREADS", "2")
            .env("CALLSCRIBE_ANALYSIS__ENGINE", "heuristic")
            .env("CALLSCRIBE_REDACTION__ENABLED", "true");
    };

    // The app's tables, as Laravel makes them.
    app.php(&["create-tables"]);
    let (code, out, _) = env.cli(&["doctor"]);
    assert_ne!(code, 0, "doctor must fail before the migration: {out}");
    assert!(out.contains("ai_call_recordings.attempts"), "{out}");
    let mut c = env.command(&["run", "--drain"]);
    run_env(&mut c);
    let refused = c.output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("callscribe migrate"), "{refused:?}");

    // The app team's migration, generated by callscribe, run by Laravel.
    let (code, php_migration, _) = env.cli(&["laravel-migration"]);
    assert_eq!(code, 0);
    let file = env.dir.path().join("2026_11_23_000000_add_callscribe_worker_columns.php");
    std::fs::write(&file, &php_migration).unwrap();
    app.php(&["migrate", &file.display().to_string()]);
    let (code, out, _) = env.cli(&["doctor"]);
    assert!(out.contains("ok   schema"), "{out}");
    assert!(out.contains("ok   types"), "{out}");
    assert!(!out.contains("warn claim"), "the claim index is in place: {out}");
    // `callscribe migrate` on the app's tables has nothing left to do.
    let (code2, out2, err2) = env.cli(&["migrate"]);
    assert_eq!(code2, 0, "{out2}{err2}");
    assert!(out2.contains("schema up to date"), "{out2}");
    let _ = code;

    // Rows as the app inserts them.
    let (raw, wav49) = gsm_call(env.dir.path());
    let good = app.upload(Some(&raw), "call-recordings/2026/11/23/apx-1_aB3dE5gH7jK9mN1pQ2rS.gsm", "gsm");
    let wav = app.upload(Some(&wav49), "call-recordings/2026/11/23/apx-1_zY8xW6vU4tS2rQ0pO9nM.wav", "wav");
    let missing = app.upload(None, "call-recordings/2026/11/23/apx-1_missingmissingmiss.gsm", "gsm");
    let deleted = app.upload(Some(&raw), "call-recordings/2026/11/23/apx-1_deleteddeleteddelet.gsm", "gsm");
    app.php(&["soft-delete", &deleted.to_string()]);

    let mut c = env.command(&["run", "--drain"]);
    run_env(&mut c);
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("Priya"), "transcript text in the logs");

    let reference = format!("{AGENT} {SUPPORTER}");
    for id in [good, wav] {
        let r = app.read(id);
        assert_eq!(r["processing_status"], "completed", "{r:#}");
        assert_eq!(r["processing_error"], Value::Null);
        assert!(r["processing_completed_at"].is_string(), "{r:#}");
        assert!(r["duration_seconds"].as_i64().is_some_and(|d| (6..=20).contains(&d)), "{r:#}");
        let t = &r["transcription"];
        let w = wer(&reference, t["full_transcript"].as_str().unwrap_or_else(|| panic!("no transcript: {r:#}")));
        eprintln!("{kind:?} GSM row {id}: WER {w:.3}: {}", t["full_transcript"]);
        assert!(w < 0.35, "WER {w:.3}: {t:#}");
        assert_eq!(t["language_detected"], "en");
        // Redaction on, nothing personal said: the redacted text is the text, and
        // `pii_detected` an empty list the app decodes.
        assert_eq!(t["redacted_transcript"], t["full_transcript"], "{t:#}");
        assert_eq!(t["pii_detected"], serde_json::json!([]), "{t:#}");
        assert!(t["confidence_score"].as_f64().is_some_and(|c| c > 0.0 && c <= 1.0), "{t:#}");
        assert!(t["model_used"].as_str().unwrap().contains("tiny.en"), "{t:#}");
        assert!(t["processing_time_seconds"].is_i64(), "{t:#}");
        let segs = t["segments_json"].as_array().expect("the JSON segments column");
        assert!(!segs.is_empty());
        for (i, s) in segs.iter().enumerate() {
            assert_eq!(s["segment_id"].as_u64(), Some(i as u64));
            for k in ["text", "start", "end", "speaker", "speaker_id", "confidence", "words"] {
                assert!(s.get(k).is_some(), "segment lacks {k}: {s}");
            }
            assert!(matches!(s["speaker"].as_str(), Some("agent" | "supporter")), "{s}");
            for w in s["words"].as_array().unwrap() {
                assert!(w["word"].is_string() && w["confidence"].is_number(), "{w}");
                assert!(w["start"].as_f64() <= w["end"].as_f64(), "{w}");
            }
        }
        assert_eq!(segs[0]["speaker"], "agent", "the voice that opens the call is the agent");
        // CallTranscription::segments() (ai_call_segments), ordered by start_time.
        let rows = t["segment_rows"].as_array().expect("ai_call_segments rows");
        assert_eq!(rows.len(), segs.len());
        assert!(rows.windows(2).all(|p| p[0]["start_time"].as_f64() <= p[1]["start_time"].as_f64()));
        match kind {
            Kind::Postgres => {
                // The app's `getSpeakersAttribute` (distinct + orderBy start_time)
                // is refused by PostgreSQL whatever the rows hold; the relation
                // itself (checked above) works.
                let e = t["speakers"]["accessor_error"].as_str().unwrap_or_default();
                eprintln!("the app's CallTranscription::speakers on PostgreSQL: {e}");
                assert!(e.contains("DISTINCT ON") || t["speakers"].is_array(), "{t:#}");
            }
            _ => assert!(t["speakers"].as_array().unwrap().iter().any(|s| s == "agent"), "{t:#}"),
        }

        let a = &r["analysis"];
        let label = a["sentiment_label"].as_str().expect("sentiment_label");
        assert!(["very_negative", "negative", "neutral", "positive", "very_positive"].contains(&label), "{a:#}");
        assert_ne!(a["sentiment_color"], "unknown", "{a:#}");
        assert!(a["sentiment_score"].as_f64().is_some_and(|s| (-10.0..=10.0).contains(&s)), "{a:#}");
        assert!(a["summary"].as_str().is_some_and(|s| !s.is_empty()), "{a:#}");
        // The heuristic does not judge a whole call: NULL, which the app shows as N/A.
        assert_eq!(
            (a["quality_score"].clone(), a["quality_grade"].as_str()),
            (serde_json::Value::Null, Some("N/A")),
            "{a:#}"
        );
        assert!(a["key_topics"].is_array(), "{a:#}");
        for t in a["key_topics"].as_array().unwrap() {
            for k in ["name", "confidence", "key", "segment_ids", "quote", "timestamp_start", "timestamp_end"] {
                assert!(t.get(k).is_some(), "topic lacks {k}: {t}");
            }
        }
        for x in a["action_items"].as_array().unwrap() {
            assert!(x["description"].is_string() && x["priority"].is_string(), "{x}");
        }
        assert!(a["compliance_flags"].is_array(), "{a:#}");
        let m = &a["speaker_metrics"];
        for k in [
            "talk_time_seconds",
            "talk_time_percentage",
            "word_count",
            "average_pace_wpm",
            "interruptions",
            "silence_percentage",
        ] {
            assert!(m["agent"][k].is_number(), "agent lacks {k}: {m}");
        }
        assert_eq!(a["model_used"], "lexicon-v2", "the heuristic engine names itself, not the column default: {a:#}");
        assert_eq!(a["recording_id_via_belongs_to"].as_i64(), Some(id));
        assert_eq!((r["transcriptions"].as_i64(), r["analyses"].as_i64()), (Some(1), Some(1)));
    }

    // A missing object: failed at once, with a sentence the app can show.
    let r = app.read(missing);
    assert_eq!(r["processing_status"], "failed", "{r:#}");
    assert!(r["processing_error"].as_str().unwrap().contains("not found"), "{r:#}");
    // A soft-deleted row is never touched.
    let r = app.read(deleted);
    assert_eq!((r["processing_status"].as_str(), r["trashed"].as_bool()), (Some("pending"), Some(true)), "{r:#}");
    assert_eq!(r["transcriptions"], 0);

    // The app's own reprocess: pending again with error and times nulled. It gets
    // a full set of attempts (attempt 1 again, not 2) and replaces the results.
    let q = env.queue().await;
    assert_eq!(common::row(q.as_ref(), good).await.attempts, 1);
    let first_started = app.read(good)["processing_started_at"].clone();
    app.php(&["reprocess", &good.to_string()]);
    let mut c = env.command(&["run", "--drain"]);
    run_env(&mut c);
    assert!(c.output().unwrap().status.success());
    let r = app.read(good);
    assert_eq!(r["processing_status"], "completed", "{r:#}");
    assert_eq!((r["transcriptions"].as_i64(), r["analyses"].as_i64()), (Some(1), Some(1)), "replaced, not added");
    assert!(r["processing_started_at"].is_string() && r["processing_started_at"] != Value::Null);
    let _ = first_started;
    assert_eq!(common::row(q.as_ref(), good).await.attempts, 1, "the app's reprocess restarts the attempts");

    // `queued` (the app's priority reprocess) is claimed before an older `pending`.
    let older = app.upload(Some(&raw), "call-recordings/2026/11/23/apx-1_olderolderolderolde.gsm", "gsm");
    app.php(&["set-status", &wav.to_string(), "queued"]);
    let jobs = q.claim("probe", 1).await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![wav], "queued first (older pending: {older})");
    assert_eq!(jobs[0].r2_bucket.as_deref(), Some("call-recordings-bucket"));
    q.close().await;

    // The app team's down() removes what up() added, and the app's tables stay.
    app.php(&["rollback", &file.display().to_string()]);
    let cols: Vec<String> = serde_json::from_str(&app.php(&["columns", "ai_call_recordings"])).unwrap();
    assert!(!cols.iter().any(|c| c == "attempts" || c == "heartbeat_at"), "{cols:?}");
    assert!(cols.iter().any(|c| c == "r2_path"), "{cols:?}");
}

/// `callscribe migrate` on tables made by Laravel (no migration from the app
/// team): it adds the worker's columns, the segments table and the indexes,
/// `doctor` is then satisfied, and a second run has nothing left to do.
async fn migrate_extends_the_apps_tables(kind: Kind, name: &str) {
    let env = Env::bare(kind, name).await;
    let database = env.url.rsplit('/').next().unwrap().to_string();
    let app = App { driver: if kind == Kind::Postgres { "pgsql" } else { "mysql" }, database, env: &env };
    app.php(&["create-tables"]);
    let id = app.upload(None, "call-recordings/2026/11/23/kept_aaaaaaaaaaaaaaaaaaaa.gsm", "gsm");
    let (code, out, err) = env.cli(&["migrate"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ALTER TABLE ai_call_recordings ADD COLUMN attempts"), "{out}");
    assert!(out.contains("created table ai_call_segments") && out.contains("created index"), "{out}");
    assert!(!out.contains("created table ai_call_recordings"), "the app's table is kept: {out}");
    let (_, out, _) = env.cli(&["doctor"]);
    assert!(out.contains("ok   schema") && out.contains("ok   types") && !out.contains("warn claim"), "{out}");
    let (code, out, _) = env.cli(&["migrate"]);
    assert_eq!((code, out.trim().starts_with("schema up to date")), (0, true), "{out}");
    // The app's row is intact and claimable.
    assert_eq!(app.read(id)["processing_status"], "pending");
    let q = env.queue().await;
    assert_eq!(q.claim("probe", 5).await.unwrap().iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
    q.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_extends_the_apps_tables_on_mariadb() {
    migrate_extends_the_apps_tables(Kind::Mysql, "migrate_app_mariadb").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_extends_the_apps_tables_on_postgres() {
    migrate_extends_the_apps_tables(Kind::Postgres, "migrate_app_postgres").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn laravel_app_on_mariadb() {
    laravel_app(Kind::Mysql, "laravel_app_mariadb").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn laravel_app_on_postgres() {
    laravel_app(Kind::Postgres, "laravel_app_postgres").await
}
