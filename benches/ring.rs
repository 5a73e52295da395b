//! Rust↔Rust throughput over one ring: a producer thread pushes frames of 64 B, 1 KiB and
//! 64 KiB (fragmented where larger than a quarter ring) and a consumer thread polls them, over
//! a heap region with the same `MappedMemory` code the shm path runs. This is the ceiling the
//! Python client is measured against: the worker must never be the bottleneck.
//!
//! Run: `cargo bench --bench ring` (numbers in `target/criterion/`).

use std::thread;
use std::time::{Duration, Instant};

use chunkring::frame::FrameHeader;
use chunkring::region::{heap::HeapBacking, RegionConfig};
use chunkring::ring::{Consumer, MessageWriter, Producer};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Moves `n` messages of `size` bytes producer → consumer; returns the elapsed time.
fn run(n: u64, size: usize) -> Duration {
    let region = HeapBacking::region(&RegionConfig {
        ring_bytes: 1 << 20,
        chunk_bytes: 64,
        ..Default::default()
    })
    .unwrap();
    let mut p = Producer::new(region.request_ring().unwrap());
    let mut c = Consumer::new(region.request_ring().unwrap());
    let start = Instant::now();
    let producer = thread::spawn(move || {
        let body = vec![0x5Au8; size];
        let single = size <= p.geometry().max_frame_payload();
        for i in 0..n {
            if single {
                let h = FrameHeader::message(1, i, size as u32, size as u64);
                while p.try_push(&h, &body).is_err() {
                    p.publish();
                    std::hint::spin_loop();
                }
            } else {
                let mut w = MessageWriter::new(1, i, body.clone());
                let mut frames = 0;
                while !w.write(&mut p, &mut frames).unwrap() {
                    p.publish();
                    std::hint::spin_loop();
                }
            }
            if i % 16 == 15 {
                p.publish();
            }
        }
        p.publish();
    });
    let mut buf = Vec::new();
    let mut bytes = 0usize;
    let total = n as usize * size;
    while bytes < total {
        match c.poll(&mut buf) {
            Ok(Some(h)) => bytes += h.payload_len as usize,
            Ok(None) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
    producer.join().unwrap();
    start.elapsed()
}

fn throughput(crit: &mut Criterion) {
    let mut g = crit.benchmark_group("ring-throughput");
    for (size, n) in [(64usize, 20_000u64), (1024, 10_000), (65536, 500)] {
        g.throughput(Throughput::Bytes(size as u64 * n));
        g.bench_with_input(
            BenchmarkId::new("1-chunkring-frames", size),
            &size,
            |b, &size| b.iter_custom(|iters| (0..iters).map(|_| run(n, size)).sum()),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(3));
    targets = throughput
}
criterion_main!(benches);
