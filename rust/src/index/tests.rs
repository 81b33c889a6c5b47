//! Tests of the whole index: searches against a brute-force model, through
//! adds, replacements and removals, in both modes, and through files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::file::{from_bytes, to_bytes, FORMAT_VERSION, TEST_HEADER_LEN};
use super::kernels::f32_dot;
use super::quantize::tests::random_unit;
use super::rng::SplitMix64;
use super::*;

/// What the index should hold: id → (unit vector, namespace).
#[derive(Default)]
struct Model {
    entries: BTreeMap<String, (Vec<f32>, Option<String>)>,
}

impl Model {
    fn add(&mut self, ids: &[String], rows: &[Vec<f32>], ns: Option<&str>) {
        for (id, row) in ids.iter().zip(rows) {
            let mut unit = row.clone();
            normalize(&mut unit).unwrap();
            self.entries
                .insert(id.clone(), (unit, ns.map(str::to_owned)));
        }
    }

    /// Exhaustive search: every score, sorted by (score desc, id asc).
    fn search(&self, query: &[f32], k: usize, min: f32, ns: Option<&str>) -> Vec<(String, f32)> {
        let mut q = query.to_vec();
        normalize(&mut q).unwrap();
        let mut all: Vec<(String, f32)> = self
            .entries
            .iter()
            .filter(|(_, (_, n))| ns.is_none() || n.as_deref() == ns)
            .map(|(id, (v, _))| (id.clone(), f32_dot(best_isa(), v, &q)))
            .filter(|&(_, s)| s >= min)
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }
}

fn hits(
    index: &VectorIndex,
    q: &[f32],
    k: i64,
    min: f64,
    ns: Option<&str>,
    exact: bool,
) -> Vec<(String, f32)> {
    index
        .search(q, k, min, ns, exact)
        .unwrap()
        .into_iter()
        .map(|(id, s)| (id.to_string(), s))
        .collect()
}

fn ids(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// Points around `clusters` random centres, like sentence embeddings of a
/// few topics; `spread` is the noise norm relative to the centre.
fn clustered(
    rng: &mut SplitMix64,
    n: usize,
    dim: usize,
    clusters: usize,
    spread: f32,
) -> Vec<Vec<f32>> {
    let centres: Vec<Vec<f32>> = (0..clusters).map(|_| random_unit(rng, dim)).collect();
    (0..n)
        .map(|_| {
            let c = &centres[rng.below(clusters)];
            perturb(rng, c, spread)
        })
        .collect()
}

fn perturb(rng: &mut SplitMix64, v: &[f32], spread: f32) -> Vec<f32> {
    let noise = random_unit(rng, v.len());
    let mut out: Vec<f32> = v.iter().zip(&noise).map(|(a, b)| a + spread * b).collect();
    normalize(&mut out).unwrap();
    out
}

#[test]
fn add_contains_len_and_replace() {
    let mut index = VectorIndex::new(3, Mode::Auto).unwrap();
    assert!(index.is_empty());
    index
        .add(ids("a", 0..2), vec![1.0, 0.0, 0.0, 0.0, 2.0, 0.0], None)
        .unwrap();
    assert_eq!(index.len(), 2);
    assert!(index.contains("a0") && index.contains("a1") && !index.contains("a2"));
    // Replacing a0 with a vector along z: a query along z now finds it.
    index
        .add(vec!["a0".into()], vec![0.0, 0.0, 5.0], None)
        .unwrap();
    assert_eq!(index.len(), 2);
    let got = hits(&index, &[0.0, 0.0, 1.0], 1, 0.0, None, false);
    assert_eq!(got, vec![("a0".to_string(), 1.0)]);
    // Stored normalised: the similarity is a cosine.
    let got = hits(&index, &[0.0, 3.0, 3.0], 2, -1.0, None, false);
    assert!((got[0].1 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
}

#[test]
fn bad_adds_change_nothing() {
    let mut index = VectorIndex::new(2, Mode::Exact).unwrap();
    index.add(ids("k", 0..1), vec![1.0, 1.0], None).unwrap();
    let cases: Vec<(Vec<String>, Vec<f32>, &str)> = vec![
        (ids("x", 0..2), vec![1.0, 2.0, 3.0], "components"),
        (ids("x", 0..2), vec![1.0, 2.0], "ids but"),
        (vec!["d".into(), "d".into()], vec![1.0; 4], "more than once"),
        (ids("x", 0..2), vec![1.0, 2.0, 0.0, 0.0], "all zeros"),
        (ids("x", 0..2), vec![1.0, 2.0, f32::NAN, 0.0], "NaN"),
        (
            ids("x", 0..2),
            vec![f32::INFINITY, 2.0, 1.0, 0.0],
            "infinite",
        ),
    ];
    for (i, v, word) in cases {
        let err = index.add(i, v, Some("ns")).unwrap_err();
        assert!(err.to_string().contains(word), "{err}");
        assert_eq!(index.len(), 1);
        assert!(!index.contains("x0") && !index.contains("d"));
    }
    let err = index
        .add(ids("x", 0..2), vec![1.0, 2.0, 0.0, 0.0], None)
        .unwrap_err();
    assert!(
        err.to_string().contains("\"x1\""),
        "names the bad id: {err}"
    );
}

#[test]
fn search_rejects_bad_arguments() {
    let mut index = VectorIndex::new(2, Mode::Auto).unwrap();
    index.add(ids("k", 0..1), vec![1.0, 1.0], None).unwrap();
    assert!(matches!(
        index.search(&[1.0, 0.0], 0, 0.0, None, false),
        Err(IndexError::InvalidK(0))
    ));
    assert!(matches!(
        index.search(&[1.0, 0.0], 1, f64::NAN, None, false),
        Err(IndexError::InvalidMinSimilarity)
    ));
    assert!(matches!(
        index.search(&[1.0], 1, 0.0, None, false),
        Err(IndexError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        index.search(&[0.0, 0.0], 1, 0.0, None, false),
        Err(IndexError::InvalidQuery(_))
    ));
    assert!(index
        .search(&[1.0, 0.0], 1, 0.0, Some("never"), false)
        .unwrap()
        .is_empty());
    assert!(VectorIndex::new(2, Mode::Auto)
        .unwrap()
        .search(&[1.0, 0.0], 3, 0.0, None, false)
        .unwrap()
        .is_empty());
    assert!(matches!(
        Mode::parse("fast"),
        Err(IndexError::InvalidMode(_))
    ));
}

#[test]
fn min_similarity_compares_as_the_caller_wrote_it() {
    // 0.9 is not an f32: a score that rounds to f32(0.9) < 0.9 is excluded.
    let mut index = VectorIndex::new(2, Mode::Exact).unwrap();
    index.add(ids("k", 0..1), vec![1.0, 0.0], None).unwrap();
    let got = hits(&index, &[1.0, 0.0], 1, 1.0, None, false);
    assert_eq!(got.len(), 1);
    assert_eq!(f32_at_least(0.9), 0.9f32.next_up());
    assert_eq!(f32_at_least(0.5), 0.5);
    assert!(hits(&index, &[1.0, 0.0], 1, 1.000_000_1, None, false).is_empty());
}

#[test]
fn exact_search_matches_brute_force_through_adds_replacements_and_removals() {
    let mut rng = SplitMix64::new(1);
    let dim = 48;
    let mut index = VectorIndex::new(dim as i64, Mode::Exact).unwrap();
    let mut model = Model::default();
    let namespaces = [None, Some("alpha"), Some("beta")];
    for round in 0..12 {
        // A batch of new and replaced ids, some of them exact duplicates
        // of one vector (ties), in a random namespace.
        let start = round * 150;
        let mut batch_ids = ids("e", start..start + 200);
        batch_ids.push(format!("e{}", rng.below(start + 1)));
        batch_ids.sort();
        batch_ids.dedup();
        let tie = random_unit(&mut rng, dim);
        let rows: Vec<Vec<f32>> = (0..batch_ids.len())
            .map(|i| {
                if i % 5 == 0 {
                    tie.iter().map(|x| x * 3.0).collect()
                } else {
                    random_unit(&mut rng, dim)
                }
            })
            .collect();
        let ns = namespaces[round % 3];
        index.add(batch_ids.clone(), rows.concat(), ns).unwrap();
        model.add(&batch_ids, &rows, ns);

        let gone: Vec<String> = (0..40)
            .map(|_| format!("e{}", rng.below(start + 200)))
            .collect();
        let present = gone
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|id| model.entries.remove(id.as_str()).is_some())
            .count();
        assert_eq!(index.remove(&gone), present);
        assert_eq!(index.len(), model.entries.len());

        for trial in 0..10 {
            let q = if trial == 0 {
                tie.clone()
            } else {
                random_unit(&mut rng, dim)
            };
            for (k, min, ns) in [
                (1, -1.0, None),
                (10, 0.0, None),
                (25, 0.1, Some("alpha")),
                (5000, 0.2, Some("beta")),
            ] {
                let got = hits(&index, &q, k as i64, min.into(), ns, false);
                assert_eq!(
                    got,
                    model.search(&q, k, min, ns),
                    "round {round} k={k} ns={ns:?}"
                );
            }
        }
    }
    for id in model.entries.keys() {
        assert!(index.contains(id));
    }
}

#[test]
fn approximate_mode_finds_near_duplicates_and_keeps_working_after_edits() {
    let mut rng = SplitMix64::new(2);
    let dim = 64;
    let rows = clustered(&mut rng, 20_000, dim, 300, 0.6);
    let mut index = VectorIndex::new(dim as i64, Mode::Approximate).unwrap();
    let all_ids = ids("c", 0..rows.len());
    index.add(all_ids.clone(), rows.concat(), None).unwrap();
    assert!(index.is_approximate());
    assert_eq!(index.nlist(), ivf::choose_nlist(20_000));
    let mut model = Model::default();
    model.add(&all_ids, &rows, None);

    let recall = |index: &VectorIndex, model: &Model, rng: &mut SplitMix64| {
        let mut found = 0;
        for _ in 0..200 {
            let (_, (v, _)) = model
                .entries
                .iter()
                .nth(rng.below(model.entries.len()))
                .unwrap();
            let q = perturb(rng, v, 0.3);
            let want = model.search(&q, 1, -1.0, None);
            let got = hits(index, &q, 1, -1.0, None, false);
            found += usize::from(got.first().map(|g| &g.0) == Some(&want[0].0));
        }
        found as f64 / 200.0
    };
    let r = recall(&index, &model, &mut rng);
    assert!(r >= 0.97, "recall@1 {r}");

    // Exact on request, even in approximate mode.
    for _ in 0..20 {
        let q = random_unit(&mut rng, dim);
        assert_eq!(
            hits(&index, &q, 10, -1.0, None, true),
            model.search(&q, 10, -1.0, None)
        );
    }

    // Removed entries are never found; added and replaced ones are.
    let gone = ids("c", 0..5000);
    assert_eq!(index.remove(&gone), 5000);
    for id in &gone {
        model.entries.remove(id);
    }
    let fresh = clustered(&mut rng, 3000, dim, 50, 0.6);
    let fresh_ids = ids("n", 0..3000);
    index
        .add(fresh_ids.clone(), fresh.concat(), Some("new"))
        .unwrap();
    model.add(&fresh_ids, &fresh, Some("new"));
    assert!(index.is_approximate());
    for (id, row) in fresh_ids.iter().zip(&fresh).step_by(100) {
        let got = hits(&index, row, 1, 0.0, Some("new"), false);
        assert_eq!(got[0].0, *id);
    }
    for _ in 0..100 {
        let q = random_unit(&mut rng, dim);
        for (id, _) in hits(&index, &q, 20, -1.0, None, false) {
            assert!(model.entries.contains_key(&id), "{id} was removed");
        }
    }
    let r = recall(&index, &model, &mut rng);
    assert!(r >= 0.97, "recall@1 after edits {r}");

    // Shrinking far below the threshold goes back to exact.
    let rest: Vec<String> = model.entries.keys().skip(100).cloned().collect();
    index.remove(&rest);
    for id in &rest {
        model.entries.remove(id);
    }
    assert!(!index.is_approximate());
    let q = random_unit(&mut rng, dim);
    assert_eq!(
        hits(&index, &q, 7, -1.0, None, false),
        model.search(&q, 7, -1.0, None)
    );
}

#[test]
fn nprobe_is_validated_and_all_lists_make_it_exact() {
    let mut rng = SplitMix64::new(3);
    let rows = clustered(&mut rng, 3000, 16, 40, 0.5);
    let mut index = VectorIndex::new(16, Mode::Approximate).unwrap();
    index.add(ids("p", 0..3000), rows.concat(), None).unwrap();
    let mut model = Model::default();
    model.add(&ids("p", 0..3000), &rows, None);
    assert!(matches!(
        index.set_nprobe(Some(0)),
        Err(IndexError::InvalidNprobe(0))
    ));
    index.set_nprobe(Some(1_000_000)).unwrap();
    assert_eq!(index.nprobe(), index.nlist());
    let q = random_unit(&mut rng, 16);
    assert_eq!(
        hits(&index, &q, 5, -1.0, None, false),
        model.search(&q, 5, -1.0, None)
    );
    index.set_nprobe(None).unwrap();
    assert_eq!(index.nprobe(), ivf::default_nprobe(index.nlist()));
}

fn sample_index(mode: Mode, n: usize) -> (VectorIndex, Model) {
    let mut rng = SplitMix64::new(4);
    let dim = 24;
    let mut index = VectorIndex::new(dim as i64, mode).unwrap();
    let mut model = Model::default();
    let rows = clustered(&mut rng, n, dim, 20, 0.5);
    let (a, b) = rows.split_at(n / 2);
    index.add(ids("s", 0..n / 2), a.concat(), None).unwrap();
    index
        .add(ids("s", n / 2..n), b.concat(), Some("team ✓"))
        .unwrap();
    model.add(&ids("s", 0..n / 2), a, None);
    model.add(&ids("s", n / 2..n), b, Some("team ✓"));
    index.set_nprobe(Some(3)).unwrap();
    (index, model)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facilitair-index-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn save_and_load_give_back_the_same_index() {
    let dir = temp_dir("roundtrip");
    for (mode, n) in [
        (Mode::Exact, 500),
        (Mode::Approximate, 3000),
        (Mode::Auto, 0),
    ] {
        let (index, _) = sample_index(mode, n);
        let path = dir.join("index.fvx");
        index.save(&path).unwrap();
        let loaded = VectorIndex::load(&path).unwrap();
        assert_eq!(loaded.len(), index.len());
        assert_eq!(loaded.mode(), mode);
        assert_eq!(loaded.is_approximate(), index.is_approximate());
        assert_eq!(loaded.nprobe(), index.nprobe());
        let mut rng = SplitMix64::new(9);
        for _ in 0..20 {
            let q = random_unit(&mut rng, 24);
            for ns in [None, Some("team ✓")] {
                assert_eq!(
                    hits(&loaded, &q, 10, -1.0, ns, false),
                    hits(&index, &q, 10, -1.0, ns, false)
                );
            }
        }
        // A loaded index keeps working: add, remove, save again.
        let mut loaded = loaded;
        loaded
            .add(vec!["late".into()], random_unit(&mut rng, 24), None)
            .unwrap();
        let removed = loaded.remove(&["s1", "missing"]);
        assert_eq!(removed, usize::from(n > 1));
        loaded.save(&path).unwrap();
        assert_eq!(
            VectorIndex::load(&path).unwrap().len(),
            index.len() + 1 - removed
        );
        // Nothing left behind but the file.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("index.fvx")]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Recomputes the trailing checksum, so a test can damage the payload
/// behind the checksum's back.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len();
    let crc = crc32fast::hash(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

fn problem(bytes: &[u8]) -> FileProblem {
    match from_bytes(bytes) {
        Err(p) => p,
        Ok(_) => panic!("loaded a bad file"),
    }
}

#[test]
fn truncated_files_are_rejected_at_every_length() {
    let (index, _) = sample_index(Mode::Approximate, 1200);
    let bytes = to_bytes(&index);
    assert!(from_bytes(&bytes).is_ok());
    for len in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
        match problem(&bytes[..len]) {
            FileProblem::Truncated { actual, .. } => assert_eq!(actual, len as u64),
            other => panic!("length {len}: {other:?}"),
        }
    }
}

#[test]
fn damaged_bytes_are_caught_by_the_checksum() {
    let (index, _) = sample_index(Mode::Approximate, 1200);
    let bytes = to_bytes(&index);
    let mut rng = SplitMix64::new(5);
    for _ in 0..300 {
        let mut bad = bytes.clone();
        let at = 12 + rng.below(bad.len() - 12);
        bad[at] ^= 1 << rng.below(8);
        match problem(&bad) {
            FileProblem::Corrupt(_) | FileProblem::Truncated { .. } => {}
            other => panic!("flip at {at}: {other:?}"),
        }
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"junk");
    assert!(matches!(problem(&longer), FileProblem::Corrupt(_)));
}

#[test]
fn foreign_and_other_version_files_are_named_as_such() {
    let (index, _) = sample_index(Mode::Exact, 50);
    let bytes = to_bytes(&index);
    let mut rng = SplitMix64::new(6);
    let random: Vec<u8> = (0..5000).map(|_| rng.next_u64() as u8).collect();
    for foreign in [
        &random[..],
        b"{\"json\": true}",
        b"\x89PNG\r\n\x1a\n....",
        b"x",
    ] {
        assert_eq!(problem(foreign), FileProblem::Foreign);
    }
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert_eq!(
        problem(&newer),
        FileProblem::OtherVersion {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        }
    );
    // A newer version is recognised even if its layout is entirely other.
    assert!(matches!(
        problem(&newer[..12]),
        FileProblem::OtherVersion { .. }
    ));
}

#[test]
fn checksummed_but_inconsistent_files_are_rejected_without_huge_allocations() {
    let (index, _) = sample_index(Mode::Exact, 50);
    let good = to_bytes(&index);
    let h = TEST_HEADER_LEN;
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "huge entry count",
            Box::new(|b| b[16..24].copy_from_slice(&u64::MAX.to_le_bytes())),
        ),
        (
            "entry count off by one",
            Box::new(|b| b[16..24].copy_from_slice(&51u64.to_le_bytes())),
        ),
        (
            "dimension 0",
            Box::new(|b| b[12..16].copy_from_slice(&0u32.to_le_bytes())),
        ),
        (
            "huge dimension",
            Box::new(|b| b[12..16].copy_from_slice(&u32::MAX.to_le_bytes())),
        ),
        ("unknown mode", Box::new(|b| b[32] = 9)),
        ("unknown flag", Box::new(|b| b[33] = 0x80)),
        ("lists flagged but absent", Box::new(|b| b[33] = 1)),
        (
            "huge namespace count",
            Box::new(move |b| b[h..h + 4].copy_from_slice(&u32::MAX.to_le_bytes())),
        ),
        (
            "huge name length",
            Box::new(move |b| b[h + 4..h + 8].copy_from_slice(&u32::MAX.to_le_bytes())),
        ),
        ("name not UTF-8", Box::new(move |b| b[h + 8] = 0xFF)),
        (
            "vector not unit",
            Box::new(|b| {
                let at = b.len() - 8;
                b[at..at + 4].copy_from_slice(&7.0f32.to_le_bytes());
            }),
        ),
        (
            "vector NaN",
            Box::new(|b| {
                let at = b.len() - 8;
                b[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
            }),
        ),
    ];
    for (what, edit) in edits {
        let mut bad = good.clone();
        edit(&mut bad);
        reseal(&mut bad);
        assert!(matches!(problem(&bad), FileProblem::Corrupt(_)), "{what}");
    }

    // Two entries with the same id, everything else consistent.
    let mut twins = VectorIndex::new(2, Mode::Exact).unwrap();
    twins
        .add(
            vec!["aa".into(), "ab".into()],
            vec![1.0, 0.0, 0.0, 1.0],
            None,
        )
        .unwrap();
    let mut bad = to_bytes(&twins);
    let at = bad.windows(2).position(|w| w == b"ab").unwrap();
    bad[at + 1] = b'a';
    reseal(&mut bad);
    assert!(matches!(problem(&bad), FileProblem::Corrupt(why) if why.contains("twice")));
}

#[test]
fn a_failed_save_leaves_the_old_file_and_no_temporary() {
    let dir = temp_dir("failed-save");
    let path = dir.join("index.fvx");
    let (index, _) = sample_index(Mode::Exact, 100);
    index.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();

    let err = file::write_atomically(&path, |mut f| {
        use std::io::Write;
        f.write_all(b"partial")?;
        Err(std::io::Error::other("disk on fire"))
    })
    .unwrap_err();
    assert!(matches!(err, IndexError::Io { .. }));
    assert!(err.to_string().contains("disk on fire"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    // Saving into a directory that does not exist is an I/O error too.
    let err = index.save(&dir.join("missing").join("x.fvx")).unwrap_err();
    assert!(matches!(err, IndexError::Io { .. }));
    // So is loading a file that does not exist.
    assert!(matches!(
        VectorIndex::load(&dir.join("nope")),
        Err(IndexError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn heap_bytes_grow_with_entries() {
    let (small, _) = sample_index(Mode::Exact, 10);
    let (big, _) = sample_index(Mode::Exact, 1000);
    assert!(big.heap_bytes() > small.heap_bytes());
    // At least the f32 vectors and the codes.
    assert!(big.heap_bytes() >= 1000 * (24 * 4 + 64 + 12));
}
