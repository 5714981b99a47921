//! A generated, labelled set of call sentences for measuring redaction: every
//! entity type in written and spoken forms, in English, in Hindi number words,
//! in Devanagari and in Hinglish, some split across segments, and near-misses
//! that must not be redacted (a 12-digit number failing Verhoeff, order ids,
//! amounts, dates that are not dates of birth, a postcode inside a product
//! code). Used by the tests (recall and precision per type) and by
//! `benches/pii_presidio.py` (`callscribe pii-corpus`).

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{check, redact_transcript, Kind, Locales};
use crate::asr::{Segment, Transcript, Word};

/// One labelled example: its words, where the segments break, and the PII.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    /// `written`, `spoken`, `hindi`, `devanagari`, `hinglish`, `split` or `near_miss`.
    pub form: &'static str,
    pub words: Vec<String>,
    /// Word indices where a new segment starts.
    pub breaks: Vec<usize>,
    pub labels: Vec<Label>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Label {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub first: usize,
    pub last: usize,
}

impl Example {
    pub fn text(&self) -> String {
        self.words.join(" ")
    }

    /// Character span of words `first..=last` in [`Example::text`].
    pub fn char_span(&self, first: usize, last: usize) -> (usize, usize) {
        let start: usize = self.words[..first].iter().map(|w| w.chars().count() + 1).sum();
        let len: usize = self.words[first..=last].iter().map(|w| w.chars().count()).sum::<usize>() + (last - first);
        (start, start + len)
    }
}

struct B {
    form: &'static str,
    words: Vec<String>,
    breaks: Vec<usize>,
    labels: Vec<Label>,
}

impl B {
    fn new(form: &'static str) -> B {
        B { form, words: Vec::new(), breaks: Vec::new(), labels: Vec::new() }
    }
    fn say(mut self, text: &str) -> B {
        self.words.extend(text.split_whitespace().map(String::from));
        self
    }
    fn pii(mut self, kind: Kind, text: &str) -> B {
        let first = self.words.len();
        self = self.say(text);
        self.labels.push(Label { kind, first, last: self.words.len() - 1 });
        self
    }
    /// A segment break in the middle of the last labelled span.
    fn split(mut self) -> B {
        if let Some(l) = self.labels.last() {
            if l.last > l.first {
                self.breaks.push((l.first + l.last).div_ceil(2));
            }
        }
        self
    }
    fn done(self) -> Example {
        Example { form: self.form, words: self.words, breaks: self.breaks, labels: self.labels }
    }
}

const EN: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
const HI: [&str; 10] = ["shunya", "ek", "do", "teen", "char", "paanch", "chhe", "saat", "aath", "nau"];
const DEVA_WORDS: [&str; 10] = ["शून्य", "एक", "दो", "तीन", "चार", "पांच", "छह", "सात", "आठ", "नौ"];

fn digit(c: char) -> usize {
    c.to_digit(10).unwrap_or(0) as usize
}

/// Digits said in English: "double five", "oh" or "zero", commas between groups.
fn spoken_en(d: &str, rng: &mut StdRng) -> String {
    let cs: Vec<char> = d.chars().collect();
    let oh = rng.gen_bool(0.5);
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let w = if cs[i] == '0' && oh { "oh" } else { EN[digit(cs[i])] };
        if i + 2 < cs.len() && cs[i] == cs[i + 1] && cs[i] == cs[i + 2] && rng.gen_bool(0.5) {
            out.push(format!("triple {w}"));
            i += 3;
        } else if i + 1 < cs.len() && cs[i] == cs[i + 1] && rng.gen_bool(0.5) {
            out.push(format!("double {w}"));
            i += 2;
        } else {
            out.push(w.to_string());
            i += 1;
        }
        if i < cs.len() && i % 5 == 0 && rng.gen_bool(0.5) {
            if let Some(last) = out.last_mut() {
                last.push(',');
            }
        }
    }
    out.join(" ")
}

fn spoken_with(d: &str, table: &[&str; 10]) -> String {
    d.chars()
        .map(|c| if c.is_ascii_digit() { table[digit(c)].to_string() } else { c.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

fn devanagari_digits(d: &str) -> String {
    d.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                char::from_u32('०' as u32 + c.to_digit(10).unwrap_or(0)).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Letters spelled one by one and digits said: "A B C P E one two three four F".
fn spelled(code: &str, rng: &mut StdRng) -> String {
    code.chars()
        .map(|c| if c.is_ascii_digit() { EN[digit(c)].to_string() } else { c.to_string() })
        .collect::<Vec<_>>()
        .join(if rng.gen_bool(0.8) { " " } else { ", " })
}

fn grouped(d: &str, groups: &[usize]) -> String {
    let mut out = Vec::new();
    let mut at = 0;
    for g in groups {
        if at + g <= d.len() {
            out.push(&d[at..at + g]);
            at += g;
        }
    }
    if at < d.len() {
        out.push(&d[at..]);
    }
    out.join(" ")
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10))).collect()
}

fn letters(rng: &mut StdRng, n: usize, from: &[u8]) -> String {
    (0..n).map(|_| from[rng.gen_range(0..from.len())] as char).collect()
}

const AZ: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn aadhaar(rng: &mut StdRng) -> String {
    let body = format!("{}{}", rng.gen_range(2..10), digits(rng, 10));
    format!("{body}{}", check::verhoeff_digit(&body))
}

fn aadhaar_failing(rng: &mut StdRng) -> String {
    loop {
        let d = format!("{}{}", rng.gen_range(2..10), digits(rng, 11));
        if !check::verhoeff(&d) {
            return d;
        }
    }
}

fn pan(rng: &mut StdRng) -> String {
    format!(
        "{}{}{}{}{}",
        letters(rng, 3, AZ),
        letters(rng, 1, b"PCHFT"),
        letters(rng, 1, AZ),
        digits(rng, 4),
        letters(rng, 1, AZ)
    )
}

fn in_mobile(rng: &mut StdRng) -> String {
    format!("{}{}", rng.gen_range(6..10), digits(rng, 9))
}

fn uk_phone(rng: &mut StdRng) -> String {
    match rng.gen_range(0..3) {
        0 => format!("07{}", digits(rng, 9)),
        1 => format!("020{}", digits(rng, 8)),
        _ => format!("0161{}", digits(rng, 7)),
    }
}

fn nino(rng: &mut StdRng) -> String {
    loop {
        let s = format!("{}{}{}", letters(rng, 2, AZ), digits(rng, 6), letters(rng, 1, b"ABCD"));
        if check::nino(&s) {
            return s;
        }
    }
}

fn nhs(rng: &mut StdRng) -> String {
    loop {
        let nine = format!("{}{}", rng.gen_range(4..10), digits(rng, 8));
        if let Some(c) = check::nhs_digit(&nine) {
            return format!("{nine}{c}");
        }
    }
}

fn card(rng: &mut StdRng) -> String {
    let body = match rng.gen_range(0..4) {
        0 => format!("4{}", digits(rng, 14)),
        1 => format!("5{}{}", rng.gen_range(1..6), digits(rng, 13)),
        2 => format!("37{}", digits(rng, 12)),
        _ => format!("6011{}", digits(rng, 11)),
    };
    format!("{body}{}", check::luhn_digit(&body))
}

fn postcode(rng: &mut StdRng) -> (String, String) {
    const OUT: &[&str] =
        &["SW1A", "M1", "B33", "CR2", "DN55", "EC1A", "W1A", "LS1", "G2", "EH1", "BT7", "CF10", "NE1", "L1"];
    let out = OUT[rng.gen_range(0..OUT.len())];
    let inward = format!("{}{}", rng.gen_range(0..10), letters(rng, 2, b"ABDEFGHJLNPQRSTUWXYZ"));
    (format!("{out} {inward}"), format!("{out}{inward}"))
}

fn gstin(rng: &mut StdRng) -> String {
    let first = format!("{:02}{}{}Z", rng.gen_range(1..36), pan(rng), rng.gen_range(1..10));
    format!("{first}{}", check::gstin_check(&first))
}

fn vehicle(rng: &mut StdRng) -> String {
    const ST: &[&str] = &["MH", "DL", "KA", "TN", "UP", "GJ", "RJ", "WB"];
    format!("{} {:02} {} {}", ST[rng.gen_range(0..ST.len())], rng.gen_range(1..60), letters(rng, 2, AZ), digits(rng, 4))
}

const NAMES: &[&str] = &["ravi", "priya", "amit", "sunita", "john", "sarah", "deepak", "emma", "arjun", "olivia"];
const SURNAMES: &[&str] = &["kumar", "sharma", "smith", "patel", "jones", "singh", "brown", "gupta"];
const MONTHS: &[&str] = &["January", "March", "June", "July", "September", "October", "December"];

fn day_words(d: u32) -> String {
    use super::detect::ORDINALS as ORD;
    match d {
        1..=20 => ORD[d as usize - 1].to_string(),
        21..=28 => format!("twenty {}", ORD[d as usize - 21]),
        _ => "twentieth".into(),
    }
}

fn year_words(y: u32) -> String {
    const TENS: [&str; 10] = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    if y >= 2000 {
        return format!(
            "two thousand {}",
            if y.is_multiple_of(100) { String::new() } else { EN[(y % 10) as usize].to_string() }
        )
        .trim()
        .to_string();
    }
    let lo = y % 100;
    let lo = if lo >= 20 {
        format!("{} {}", TENS[(lo / 10) as usize], if !lo.is_multiple_of(10) { EN[(lo % 10) as usize] } else { "" })
    } else {
        format!("oh {}", EN[(lo % 10) as usize])
    };
    format!("nineteen {}", lo.trim())
}

/// The labelled set, the same for the same seed.
pub fn generate(seed: u64, per_form: usize) -> Vec<Example> {
    let mut r = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for _ in 0..per_form {
        let rng = &mut r;
        // Aadhaar.
        let a = aadhaar(rng);
        out.push(
            B::new("written")
                .say("my aadhaar number is")
                .pii(Kind::Aadhaar, &grouped(&a, &[4, 4, 4]))
                .say("sir")
                .done(),
        );
        let s = spoken_en(&a, rng);
        out.push(B::new("spoken").say("aadhaar is").pii(Kind::Aadhaar, &s).done());
        out.push(
            B::new("hindi").say("mera aadhaar number").pii(Kind::Aadhaar, &spoken_with(&a, &HI)).say("hai").done(),
        );
        out.push(
            B::new("devanagari")
                .say("मेरा आधार नंबर")
                .pii(Kind::Aadhaar, &devanagari_digits(&grouped(&a, &[4, 4, 4])))
                .say("है")
                .done(),
        );
        out.push(
            B::new("split")
                .say("the number on my aadhaar card is")
                .pii(Kind::Aadhaar, &spoken_en(&a, rng))
                .split()
                .say("ok")
                .done(),
        );
        // PAN.
        let p = pan(rng);
        out.push(B::new("written").say("my PAN is").pii(Kind::Pan, &p).done());
        out.push(B::new("spoken").say("PAN card number").pii(Kind::Pan, &spelled(&p, rng)).done());
        out.push(B::new("hinglish").say("haan ji PAN card").pii(Kind::Pan, &p).say("hai mera").done());
        // Indian mobile.
        let m = in_mobile(rng);
        let written = match rng.gen_range(0..3) {
            0 => format!("+91 {}", grouped(&m, &[5, 5])),
            1 => m.clone(),
            _ => format!("0{}", grouped(&m, &[5, 5])),
        };
        out.push(B::new("written").say("you can call me on").pii(Kind::Phone, &written).say("anytime").done());
        out.push(B::new("spoken").say("my mobile number is").pii(Kind::Phone, &spoken_en(&m, rng)).say("okay").done());
        out.push(B::new("hindi").say("mera number").pii(Kind::Phone, &spoken_with(&m, &HI)).say("hai").done());
        out.push(B::new("devanagari").say("मेरा नंबर").pii(Kind::Phone, &spoken_with(&m, &DEVA_WORDS)).say("है").done());
        out.push(
            B::new("hinglish")
                .say("aap is number pe call karo")
                .pii(Kind::Phone, &grouped(&m, &[5, 5]))
                .say("theek hai")
                .done(),
        );
        out.push(B::new("split").say("it's").pii(Kind::Phone, &spoken_en(&m, rng)).split().say("thank you").done());
        // UK phone.
        let u = uk_phone(rng);
        let w = if rng.gen_bool(0.5) { grouped(&u, &[5, 6]) } else { format!("+44 {}", grouped(&u[1..], &[4, 6])) };
        out.push(B::new("written").say("my mobile is").pii(Kind::Phone, &w).done());
        out.push(B::new("spoken").say("ring me back on").pii(Kind::Phone, &spoken_en(&u, rng)).say("please").done());
        // UPI.
        let name = format!("{}.{}", NAMES[rng.gen_range(0..NAMES.len())], SURNAMES[rng.gen_range(0..SURNAMES.len())]);
        let handle = ["okaxis", "ybl", "paytm", "oksbi", "okicici"][rng.gen_range(0..5)];
        out.push(B::new("written").say("send it to my UPI").pii(Kind::Upi, &format!("{name}@{handle}")).done());
        out.push(
            B::new("spoken").say("UPI id is").pii(Kind::Upi, &format!("{} at {handle}", spoken_en(&m, rng))).done(),
        );
        // IFSC.
        let ifsc =
            format!("{}0{}", ["SBIN", "HDFC", "ICIC", "UTIB", "PUNB", "KKBK"][rng.gen_range(0..6)], digits(rng, 6));
        out.push(B::new("written").say("the IFSC code is").pii(Kind::Ifsc, &ifsc).done());
        out.push(B::new("spoken").say("IFSC").pii(Kind::Ifsc, &spelled(&ifsc, rng)).done());
        // Indian bank account.
        let len = rng.gen_range(11..17);
        let acc = digits(rng, len);
        out.push(B::new("written").say("my account number is").pii(Kind::BankAccount, &acc).done());
        out.push(B::new("hindi").say("khata number").pii(Kind::BankAccount, &spoken_with(&acc, &HI)).say("hai").done());
        // Voter ID, passport, GSTIN, vehicle.
        let v = format!("{}{}", letters(rng, 3, AZ), digits(rng, 7));
        out.push(B::new("written").say("voter ID number").pii(Kind::VoterId, &v).done());
        let pp = format!("{}{}", letters(rng, 1, b"ABCDEFGHJKLMNPRSTUVWY"), digits(rng, 7));
        out.push(B::new("written").say("passport number is").pii(Kind::Passport, &pp).done());
        out.push(B::new("written").say("my passport is").pii(Kind::Passport, &digits(rng, 9)).done());
        out.push(B::new("written").say("our GST number is").pii(Kind::Gstin, &gstin(rng)).done());
        let veh = vehicle(rng);
        out.push(B::new("written").say("vehicle number").pii(Kind::Vehicle, &veh).say("hai").done());
        out.push(B::new("spoken").say("gaadi number").pii(Kind::Vehicle, &spelled(&veh.replace(' ', ""), rng)).done());
        // UK: NI number, sort code and account, postcode, NHS.
        let ni = nino(rng);
        out.push(B::new("written").say("my national insurance number is").pii(Kind::Nino, &ni).done());
        let ni_spaced = format!("{} {} {} {} {}", &ni[..2], &ni[2..4], &ni[4..6], &ni[6..8], &ni[8..]);
        out.push(B::new("written").say("NI number").pii(Kind::Nino, &ni_spaced).say("thanks").done());
        out.push(B::new("spoken").say("it's").pii(Kind::Nino, &spelled(&ni, rng)).done());
        out.push(B::new("split").say("my NI is").pii(Kind::Nino, &spelled(&ni, rng)).split().done());
        let sc = digits(rng, 6);
        let ua = digits(rng, 8);
        out.push(
            B::new("written")
                .say("sort code")
                .pii(Kind::SortCode, &format!("{}-{}-{}", &sc[..2], &sc[2..4], &sc[4..]))
                .say("and account number")
                .pii(Kind::BankAccount, &ua)
                .done(),
        );
        out.push(
            B::new("spoken")
                .say("the sort code is")
                .pii(Kind::SortCode, &spoken_en(&sc, rng))
                .say("account")
                .pii(Kind::BankAccount, &spoken_en(&ua, rng))
                .done(),
        );
        let (pc, pc_compact) = postcode(rng);
        out.push(B::new("written").say("and the postcode is").pii(Kind::Postcode, &pc).done());
        out.push(B::new("spoken").say("postcode").pii(Kind::Postcode, &spelled(&pc_compact, rng)).done());
        let n = nhs(rng);
        out.push(B::new("written").say("my NHS number is").pii(Kind::Nhs, &grouped(&n, &[3, 3, 4])).done());
        out.push(B::new("spoken").say("NHS number").pii(Kind::Nhs, &spoken_en(&n, rng)).done());
        // Cards, CVV, expiry, PIN/OTP.
        let c = card(rng);
        out.push(B::new("written").say("the card number is").pii(Kind::Card, &grouped(&c, &[4, 4, 4, 4])).done());
        out.push(B::new("spoken").say("long number on the card").pii(Kind::Card, &spoken_en(&c, rng)).done());
        out.push(B::new("split").say("card number").pii(Kind::Card, &spoken_en(&c, rng)).split().done());
        let cvv = digits(rng, 3);
        out.push(B::new("written").say("the CVV is").pii(Kind::Cvv, &cvv).done());
        out.push(B::new("spoken").say("three digits on the back").pii(Kind::Cvv, &spoken_en(&cvv, rng)).done());
        let mm = rng.gen_range(1..13);
        let yy = rng.gen_range(26..33);
        out.push(B::new("written").say("expiry date").pii(Kind::Expiry, &format!("{mm:02}/{yy}")).done());
        let month_said = match mm {
            10 => "ten".to_string(),
            11 => "eleven".to_string(),
            12 => "twelve".to_string(),
            m => format!("oh {}", EN[m as usize]),
        };
        let expiry_said = format!("{month_said} twenty {}", EN[yy as usize % 10]);
        out.push(B::new("spoken").say("it expires").pii(Kind::Expiry, &expiry_said).done());
        let len = if rng.gen_bool(0.5) { 4 } else { 6 };
        let otp = digits(rng, len);
        out.push(B::new("written").say("the OTP is").pii(Kind::Pin, &otp).done());
        out.push(B::new("spoken").say("my pin is").pii(Kind::Pin, &spoken_en(&otp, rng)).done());
        out.push(B::new("hindi").say("OTP").pii(Kind::Pin, &spoken_with(&otp, &HI)).say("hai").done());
        // Email.
        let first = NAMES[rng.gen_range(0..NAMES.len())];
        let last = SURNAMES[rng.gen_range(0..SURNAMES.len())];
        let dom = ["gmail", "outlook", "yahoo", "hotmail"][rng.gen_range(0..4)];
        out.push(B::new("written").say("my email is").pii(Kind::Email, &format!("{first}.{last}@{dom}.com")).done());
        out.push(
            B::new("spoken").say("email").pii(Kind::Email, &format!("{first} dot {last} at {dom} dot com")).done(),
        );
        out.push(
            B::new("spoken")
                .say("it's")
                .pii(Kind::Email, &format!("{first}{} at {dom} dot co dot uk", rng.gen_range(1..99)))
                .done(),
        );
        // Date of birth.
        let (d, mo, y) = (rng.gen_range(1..29u32), rng.gen_range(1..13u32), rng.gen_range(1950..2006u32));
        out.push(B::new("written").say("date of birth").pii(Kind::Dob, &format!("{d:02}/{mo:02}/{y}")).done());
        let month = MONTHS[rng.gen_range(0..MONTHS.len())];
        out.push(B::new("written").say("I was born on").pii(Kind::Dob, &format!("{d} {month} {y}")).done());
        out.push(
            B::new("spoken")
                .say("born on the")
                .pii(Kind::Dob, &format!("{} of {month} {}", day_words(d), year_words(y)))
                .done(),
        );
        out.push(
            B::new("hinglish").say("janam tithi").pii(Kind::Dob, &format!("{d:02}-{mo:02}-{y}")).say("hai").done(),
        );

        // Near-misses: nothing here may be redacted.
        let near = |t: String| B::new("near_miss").say(&t).done();
        out.push(near(format!("the policy reference is {}", grouped(&aadhaar_failing(rng), &[4, 4, 4]))));
        out.push(near(format!("number {} is not valid", aadhaar_failing(rng))));
        out.push(near(format!("your order id is {}", in_mobile(rng))));
        out.push(near(format!("order number ORD-{}-{}", digits(rng, 5), digits(rng, 4))));
        out.push(near(format!("tracking number {}", digits(rng, 12))));
        out.push(near("the amount is twelve thousand five hundred rupees".into()));
        out.push(near(format!("I paid ₹{},{}00 yesterday", rng.gen_range(1..99), rng.gen_range(0..10))));
        out.push(near(format!("it costs fifteen hundred pounds for {} months", rng.gen_range(2..12))));
        out.push(near(format!("the payment is due on {:02}/{:02}/2027", rng.gen_range(1..29), rng.gen_range(1..13))));
        out.push(near(format!("I will pay on the {} of {month}", day_words(rng.gen_range(1..29)))));
        out.push(near(format!("the product code is {pc} {}", rng.gen_range(10..99))));
        out.push(near(format!("item code {pc_compact}{}", rng.gen_range(1..9))));
        out.push(near(format!("I have {} kids and we live at flat {}", EN[rng.gen_range(2..6)], rng.gen_range(1..90))));
        out.push(near("oh no I do not know, call me back in ten minutes".into()));
        out.push(near(format!(
            "there are {} {} items in the parcel",
            EN[rng.gen_range(1..10)],
            EN[rng.gen_range(1..10)]
        )));
        out.push(near(format!("invoice {} for {} units", digits(rng, 8), digits(rng, 3))));
    }
    out
}

/// Per-type counts: found in full (true positives), missed, and wrongly found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counts {
    pub tp: usize,
    pub missed: usize,
    pub false_pos: usize,
}

impl Counts {
    pub fn recall(&self) -> f64 {
        let n = self.tp + self.missed;
        if n == 0 {
            1.0
        } else {
            self.tp as f64 / n as f64
        }
    }
    pub fn precision(&self) -> f64 {
        let n = self.tp + self.false_pos;
        if n == 0 {
            1.0
        } else {
            self.tp as f64 / n as f64
        }
    }
}

/// Word spans an example's redaction found, through the real transcript path
/// (segments with word times; word `i` at `i × 0.5 s`).
pub fn predict(e: &Example, locales: Locales) -> Vec<Label> {
    let mut segments = Vec::new();
    let mut starts = vec![0];
    starts.extend(e.breaks.iter().copied());
    starts.push(e.words.len());
    for w in starts.windows(2) {
        let words: Vec<Word> = (w[0]..w[1])
            .map(|i| Word {
                word: format!(" {}", e.words[i]),
                start: i as f64 * 0.5,
                end: i as f64 * 0.5 + 0.4,
                probability: 0.9,
            })
            .collect();
        if words.is_empty() {
            continue;
        }
        segments.push(Segment {
            start: words[0].start,
            end: words[words.len() - 1].end,
            text: crate::asr::join_words(&words),
            words,
            ..Default::default()
        });
    }
    let t = Transcript { segments, ..Default::default() };
    redact_transcript(&t, locales, 0.0)
        .items
        .iter()
        .map(|i| Label {
            kind: i.kind,
            first: (i.timestamp_start / 0.5).round() as usize,
            last: ((i.timestamp_end - 0.4) / 0.5).round() as usize,
        })
        .collect()
}

/// Recall and precision per type over `examples`. A label counts as found
/// when a prediction of its type covers every one of its words; a prediction
/// is a false positive when it overlaps no label of its type.
pub fn score(examples: &[Example], locales: Locales) -> BTreeMap<Kind, Counts> {
    let mut m: BTreeMap<Kind, Counts> = BTreeMap::new();
    for e in examples {
        let pred = predict(e, locales);
        for l in &e.labels {
            let hit = pred.iter().any(|p| p.kind == l.kind && p.first <= l.first && p.last >= l.last);
            let c = m.entry(l.kind).or_default();
            if hit {
                c.tp += 1;
            } else {
                c.missed += 1;
            }
        }
        for p in &pred {
            if !e.labels.iter().any(|l| l.kind == p.kind && p.first <= l.last && l.first <= p.last) {
                m.entry(p.kind).or_default().false_pos += 1;
            }
        }
    }
    m
}
