//! Diarization error rate, scored on 10 ms frames: (missed speech + false
//! alarm + speaker confusion) / reference speech, with hypothesis speakers
//! mapped to reference speakers by the best one-to-one assignment (all
//! permutations; calls have few speakers). Overlapping reference speech counts
//! once per speaker, as in NIST's definition. [`der_collar`] leaves out frames
//! within `collar` seconds of a reference boundary (NIST's usual 0.25 s), so a
//! turn edge placed a little early or late is not scored as a speaker error.

/// `(start, end, speaker)` turns.
pub type Turns = [(f64, f64, String)];

const STEP: f64 = 0.01;

fn frames(turns: &Turns, n: usize, speakers: &[String]) -> Vec<Vec<bool>> {
    let mut out = vec![vec![false; speakers.len()]; n];
    for (s, e, who) in turns {
        let k = speakers.iter().position(|x| x == who).unwrap();
        let (a, b) = (((s / STEP).round() as usize).min(n), ((e / STEP).round() as usize).min(n));
        for f in out.iter_mut().take(b).skip(a) {
            f[k] = true;
        }
    }
    out
}

fn names(turns: &Turns) -> Vec<String> {
    let mut v: Vec<String> = turns.iter().map(|t| t.2.clone()).collect();
    v.sort();
    v.dedup();
    v
}

fn permutations(n: usize, k: usize) -> Vec<Vec<usize>> {
    // All injective maps from k items into n slots (usize::MAX = unmapped when k > n).
    fn go(n: usize, k: usize, cur: &mut Vec<usize>, used: &mut Vec<bool>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == k {
            out.push(cur.clone());
            return;
        }
        let mut any = false;
        for i in 0..n {
            if !used[i] {
                any = true;
                used[i] = true;
                cur.push(i);
                go(n, k, cur, used, out);
                cur.pop();
                used[i] = false;
            }
        }
        if !any || k > n {
            cur.push(usize::MAX);
            go(n, k, cur, used, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    go(n, k, &mut Vec::new(), &mut vec![false; n], &mut out);
    out
}

/// DER of `hyp` against `reference` (a fraction; 0 is perfect), no collar.
pub fn der(reference: &Turns, hyp: &Turns) -> f64 {
    der_collar(reference, hyp, 0.0)
}

/// DER with frames within `collar` seconds of any reference turn edge left out.
pub fn der_collar(reference: &Turns, hyp: &Turns, collar: f64) -> f64 {
    let end = reference.iter().chain(hyp.iter()).map(|t| t.1).fold(0.0, f64::max);
    let n = (end / STEP).ceil() as usize + 1;
    let (rn, hn) = (names(reference), names(hyp));
    let (rf, hf) = (frames(reference, n, &rn), frames(hyp, n, &hn));
    let mut scored = vec![true; n];
    if collar > 0.0 {
        for (s, e, _) in reference {
            for edge in [*s, *e] {
                let a = (((edge - collar) / STEP).round().max(0.0) as usize).min(n);
                let b = (((edge + collar) / STEP).round() as usize).min(n);
                scored[a..b].iter_mut().for_each(|x| *x = false);
            }
        }
    }
    let (rf, hf): (Vec<_>, Vec<_>) =
        rf.into_iter().zip(hf).zip(&scored).filter(|(_, &keep)| keep).map(|(pair, _)| pair).unzip();
    let total: usize = rf.iter().map(|f| f.iter().filter(|&&x| x).count()).sum();
    if total == 0 {
        return if hf.iter().any(|f| f.iter().any(|&x| x)) { 1.0 } else { 0.0 };
    }
    let mut best = usize::MAX;
    for map in permutations(rn.len(), hn.len()) {
        let mut err = 0usize;
        for (r, h) in rf.iter().zip(&hf) {
            let n_ref = r.iter().filter(|&&x| x).count();
            let n_hyp = h.iter().filter(|&&x| x).count();
            let correct = h.iter().enumerate().filter(|(k, &on)| on && map[*k] != usize::MAX && r[map[*k]]).count();
            err += n_ref.max(n_hyp) - correct;
        }
        best = best.min(err);
    }
    best as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[(f64, f64, &str)]) -> Vec<(f64, f64, String)> {
        v.iter().map(|(a, b, c)| (*a, *b, c.to_string())).collect()
    }

    #[test]
    fn perfect_swapped_and_wrong() {
        let r = t(&[(0.0, 2.0, "A"), (2.0, 4.0, "B")]);
        assert_eq!(der(&r, &t(&[(0.0, 2.0, "x"), (2.0, 4.0, "y")])), 0.0, "names do not matter");
        let all_one = der(&r, &t(&[(0.0, 4.0, "x")]));
        assert!((all_one - 0.5).abs() < 0.01, "{all_one}");
        let missed = der(&r, &t(&[(0.0, 2.0, "x")]));
        assert!((missed - 0.5).abs() < 0.01, "{missed}");
        let fa = der(&r, &t(&[(0.0, 2.0, "x"), (2.0, 6.0, "y")]));
        assert!((fa - 0.5).abs() < 0.01, "{fa}");
    }

    #[test]
    fn collar_forgives_edges_only() {
        let r = t(&[(0.0, 2.0, "A"), (2.0, 4.0, "B")]);
        let late = t(&[(0.0, 2.2, "x"), (2.2, 4.0, "y")]);
        assert!(der(&r, &late) > 0.04);
        assert_eq!(der_collar(&r, &late, 0.25), 0.0);
        assert!(der_collar(&r, &t(&[(0.0, 4.0, "x")]), 0.25) > 0.4);
    }
}
