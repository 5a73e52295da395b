//! Markdown render throughput and latency in-process: the ceiling the ring is measured against.
//!
//! On the corpus gathered by `benches/python/gather_corpus.py` (README and doc files of the
//! crates and Python packages on this machine, in `target/corpus/`), criterion compares
//! `0-native-pulldown-cmark` (`push_html` per document, the ceiling) with `1-op-render` (the
//! `OP_MD_RENDER` handler on the whole corpus as one list-encoded batch: list decode, UTF-8
//! check, render, list encode), and the same pair on a ~2 KB and a ~200 KB document;
//! `2-op-outline` is the `OP_MD_OUTLINE` handler on the same batch, for scale.
//!
//! `cargo bench --bench markdown -- --native-json PATH` skips criterion and writes plain
//! timings of native pulldown-cmark (docs/s, MB/s, per-call latency) as JSON, so that
//! `benches/python/markdown_peers.py` can put the ceiling in the same run as the Python peers.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chunkring::ops::markdown::options::ParseOptions;
use chunkring::ops::{encode_list, Registry, Request, State};
use criterion::{Criterion, Throughput};
use pulldown_cmark::{html, Options, Parser};

/// The corpus documents in file order, gathering them first if needed.
fn corpus() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/corpus");
    if !dir.join("manifest.json").exists() {
        let status = std::process::Command::new("python3")
            .arg(root.join("benches/python/gather_corpus.py"))
            .status()
            .expect("python3 runs benches/python/gather_corpus.py");
        assert!(status.success(), "gather_corpus.py failed");
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// The corpus document closest to 2 KB, and the first documents concatenated up to 200 KB
/// (the same choice `markdown_peers.py` makes).
fn latency_docs(docs: &[String]) -> (String, String) {
    let small = docs
        .iter()
        .min_by_key(|d| d.len().abs_diff(2048))
        .unwrap()
        .clone();
    let mut large = String::new();
    for d in docs.iter().cycle() {
        if large.len() >= 200 * 1024 {
            break;
        }
        large.push_str(d);
        large.push_str("\n\n");
    }
    (small, large)
}

fn native(docs: &[String], options: Options, out: &mut String) {
    for d in docs {
        out.clear();
        html::push_html(out, Parser::new_ext(d, options));
        black_box(&*out);
    }
}

fn op(code: u16, body: &[u8]) -> Vec<u8> {
    let handler = Registry::with_all_ops().get(code).unwrap().handler;
    let req = Request { params: b"", body };
    handler(&mut State::default(), &req).unwrap()
}

fn op_render(body: &[u8]) -> Vec<u8> {
    op(chunkring::layout::OP_MD_RENDER, body)
}

/// Runs `f` repeatedly for at least `budget`; returns the median seconds per call.
fn median_secs(budget: Duration, mut f: impl FnMut()) -> f64 {
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || times.len() < 5 {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn native_json(path: &str) {
    let docs = corpus();
    let options = ParseOptions::default().to_options();
    let bytes: usize = docs.iter().map(String::len).sum();
    let mut out = String::new();
    native(&docs, options, &mut out); // warm up
    let per_pass = median_secs(Duration::from_secs(3), || native(&docs, options, &mut out));
    let (small, large) = latency_docs(&docs);
    let one = |d: &str| {
        let mut s = String::new();
        median_secs(Duration::from_secs(1), || {
            s.clear();
            html::push_html(&mut s, Parser::new_ext(d, options));
            black_box(&s);
        })
    };
    let json = serde_json::json!({
        "corpus_docs": docs.len(),
        "corpus_bytes": bytes,
        "docs_per_s": docs.len() as f64 / per_pass,
        "mb_per_s": bytes as f64 / per_pass / 1e6,
        "latency_small_s": one(&small),
        "latency_small_bytes": small.len(),
        "latency_large_s": one(&large),
        "latency_large_bytes": large.len(),
    });
    std::fs::write(path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    println!("{json}");
}

fn criterion_benches() {
    let docs = corpus();
    let options = ParseOptions::default().to_options();
    let bytes: usize = docs.iter().map(String::len).sum();
    let body = encode_list(&docs);
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("render-corpus");
    g.throughput(Throughput::Bytes(bytes as u64));
    let mut out = String::new();
    g.bench_function("0-native-pulldown-cmark", |b| {
        b.iter(|| native(&docs, options, &mut out))
    });
    g.bench_function("1-op-render", |b| b.iter(|| black_box(op_render(&body))));
    g.bench_function("2-op-outline", |b| {
        b.iter(|| black_box(op(chunkring::layout::OP_MD_OUTLINE, &body)))
    });
    g.finish();
    let (small, large) = latency_docs(&docs);
    for (name, doc) in [("2kb", small), ("200kb", large)] {
        let mut g = c.benchmark_group(format!("render-{name}"));
        g.throughput(Throughput::Bytes(doc.len() as u64));
        let one = [doc];
        g.bench_function("0-native-pulldown-cmark", |b| {
            b.iter(|| native(&one, options, &mut out))
        });
        let body = encode_list(&one);
        g.bench_function("1-op-render", |b| b.iter(|| black_box(op_render(&body))));
        g.finish();
    }
    c.final_summary();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--native-json") {
        Some(i) => native_json(args.get(i + 1).expect("--native-json PATH")),
        None => criterion_benches(),
    }
}
