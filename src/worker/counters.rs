//! The stats the serve loop counts (layout.md §3, `STAT_*`), kept in the worker's own memory
//! and added to the header once per flush instead of with one shared-memory store per event.
#![forbid(unsafe_code)]

use crate::layout::{STATS_COUNT, STAT_REQ_PADDING, STAT_RESP_PADDING};
use crate::region::Header;

/// Counts since the last [`write_to`](Counters::write_to).
#[derive(Debug, Default)]
pub(super) struct Counters {
    counts: [u64; STATS_COUNT],
    /// Padding frames the ring ends had counted at the last [`take_padding`](Counters::take_padding).
    req_padding_seen: u64,
    resp_padding_seen: u64,
}

impl Counters {
    /// Counts `n` more of `stat` (a `STAT_*` index).
    pub(super) fn add(&mut self, stat: usize, n: u64) {
        self.counts[stat] += n;
    }

    /// Counts one more of `stat`.
    pub(super) fn bump(&mut self, stat: usize) {
        self.add(stat, 1);
    }

    /// Counts the padding frames the request consumer skipped and the response producer wrote
    /// since the last call (`requests`/`responses`: their running totals).
    pub(super) fn take_padding(&mut self, requests: u64, responses: u64) {
        self.add(STAT_REQ_PADDING, requests - self.req_padding_seen);
        self.add(STAT_RESP_PADDING, responses - self.resp_padding_seen);
        self.req_padding_seen = requests;
        self.resp_padding_seen = responses;
    }

    /// Adds everything counted to the header's counters and starts again from zero. Counters
    /// that stayed at zero are not touched (`Header::add_stats`).
    pub(super) fn write_to(&mut self, header: &Header) {
        header.add_stats(&self.counts);
        self.counts = [0; STATS_COUNT];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::STAT_REQUESTS;
    use crate::region::{heap::HeapBacking, RegionConfig};

    #[test]
    fn counts_reach_the_header_once_and_padding_as_deltas() {
        let region = HeapBacking::region(&RegionConfig {
            ring_bytes: 4096,
            ..RegionConfig::default()
        })
        .unwrap();
        let mut c = Counters::default();
        c.bump(STAT_REQUESTS);
        c.add(STAT_REQUESTS, 2);
        c.take_padding(1, 0);
        assert_eq!(
            region.header().stat(STAT_REQUESTS),
            0,
            "nothing before write_to"
        );
        c.write_to(region.header());
        c.take_padding(3, 2);
        c.write_to(region.header());
        c.write_to(region.header());
        assert_eq!(region.header().stat(STAT_REQUESTS), 3);
        assert_eq!(region.header().stat(STAT_REQ_PADDING), 3);
        assert_eq!(region.header().stat(STAT_RESP_PADDING), 2);
    }
}
