//! The MPI layer: what training needs from MPI, and nothing more.
//!
//! [`Collective`] is the small interface the synchronisation strategies and the training loop
//! use; [`MpiCollective`] implements it over an rsmpi communicator and [`SelfCollective`] is the
//! world-of-one used by unit tests. Nothing here knows about gradients, compression or models.
//!
//! MPI counts are C `int`s: every call checks that counts and displacements fit before calling
//! into MPI, so an absurd payload is an error rather than a corrupted collective.

use mpi::collective::{SystemOperation, UnsafeUserOperation};
use mpi::datatype::PartitionMut;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use std::os::raw::{c_int, c_void};
use std::time::Instant;

use crate::{Error, Result};

/// `post(i, bytes)`: hand item `i` to a pipelined allgather (see
/// [`Collective::all_gather_pipelined`]).
pub type Post<'a> = dyn FnMut(usize, &[u8]) -> Result<()> + 'a;
/// The producer of a pipelined allgather: computes the items and posts each one when ready.
pub type Produce<'a> = dyn FnMut(&mut Post<'_>) -> Result<()> + 'a;

/// A reduction operation on `f64` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
}

/// The collectives the training loop needs.
pub trait Collective {
    /// This process's rank.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// Block until every rank arrives.
    fn barrier(&self);
    /// `recv = sum over ranks of send` (f32, element-wise); `send` and `recv` have equal length.
    fn all_reduce_sum_f32(&self, send: &[f32], recv: &mut [f32]);
    /// `recv = sum over ranks of send` for IEEE binary16 values (bit patterns): every partial
    /// sum is formed in `f32` and rounded to the nearest half (saturating at +-65504), see
    /// [`half_add`](crate::half::half_add). `send` and `recv` have equal length.
    fn all_reduce_sum_f16(&self, send: &[u16], recv: &mut [u16]);
    /// Element-wise reduction of `f64` values.
    fn all_reduce_f64(&self, send: &[f64], recv: &mut [f64], op: ReduceOp);
    /// Gather equal-length byte buffers from every rank, in rank order, into `recv`
    /// (`recv.len() == send.len() * size`).
    fn all_gather_bytes(&self, send: &[u8], recv: &mut [u8]) -> Result<()>;
    /// Gather variable-length byte buffers; `counts[r]` bytes from rank r at `displs[r]`.
    fn all_gather_varcount_bytes(
        &self,
        send: &[u8],
        counts: &[i32],
        displs: &[i32],
        recv: &mut [u8],
    ) -> Result<()>;
    /// Gather one `u64` from every rank.
    fn all_gather_u64(&self, value: u64) -> Vec<u64>;
    /// Gather `send` (same length on all ranks) of `f64` from every rank, rank-major.
    fn all_gather_f64(&self, send: &[f64]) -> Vec<f64>;
    /// Replace `buf` on every rank by rank 0's `buf` (any length).
    fn broadcast_bytes(&self, buf: &mut Vec<u8>) -> Result<()>;
    /// Abort the whole job with `code` (never returns).
    fn abort(&self, code: i32) -> !;

    /// Pipelined allgather of several items that become ready one after another.
    ///
    /// `produce(post)` computes the items and calls `post(i, bytes)` as soon as item `i` is
    /// ready; the exchange of item `i` starts then (non-blocking where the transport supports
    /// it) while `produce` carries on. Item `i` must have the same length on every rank.
    /// `sends[i]` is the send buffer of item `i`; on return `recv[i]` holds every rank's item
    /// `i`, rank-major. The default implementation is blocking (nothing is hidden).
    fn all_gather_pipelined(
        &self,
        sends: &mut [Vec<u8>],
        recv: &mut [Vec<u8>],
        produce: &mut Produce<'_>,
    ) -> Result<PipelineTimes> {
        let mut comm_s = 0.0;
        let mut post = |i: usize, bytes: &[u8]| -> Result<()> {
            let (s, r) = (sends.get_mut(i), recv.get_mut(i));
            let (Some(s), Some(r)) = (s, r) else {
                return Err(Error::Other(format!("pipelined allgather: no item {i}")));
            };
            s.clear();
            s.extend_from_slice(bytes);
            r.resize(bytes.len() * self.size(), 0);
            let t = Instant::now();
            let res = self.all_gather_bytes(s, r);
            comm_s += t.elapsed().as_secs_f64();
            res
        };
        produce(&mut post)?;
        Ok(PipelineTimes {
            comm_s,
            hidden_s: 0.0,
        })
    }
}

/// Timing of one [`Collective::all_gather_pipelined`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PipelineTimes {
    /// Seconds spent in MPI calls: posting, testing, and the final wait (the exposed part).
    pub comm_s: f64,
    /// Communication taken off the critical path: for every item whose allgather was seen
    /// complete (`MPI_Test`) while `produce` was still running, the seconds from its post to
    /// that observation. Items still in flight when `produce` returns count nothing, so this is
    /// a lower bound of what the overlap hid.
    pub hidden_s: f64,
}

/// Convert a byte count to an MPI count, or explain why it cannot be one.
pub fn mpi_count(n: usize, what: &str) -> Result<i32> {
    i32::try_from(n).map_err(|_| {
        Error::Other(format!(
            "{what}: {n} bytes exceed the MPI count limit of {} bytes",
            i32::MAX
        ))
    })
}

/// MPI reduction function of [`half_add`](crate::half::half_add) over `u16` buffers
/// (`MPI_UNSIGNED_SHORT`).
///
/// # Safety
/// MPI calls it with two buffers of `*len` elements of the datatype of the reduction, which
/// [`MpiCollective::all_reduce_sum_f16`] always makes `u16`; they do not overlap.
unsafe extern "C" fn half_sum_op(
    invec: *mut c_void,
    inoutvec: *mut c_void,
    len: *mut c_int,
    _datatype: *mut mpi::ffi::MPI_Datatype,
) {
    // SAFETY: see the function's contract above.
    let n = unsafe { *len }.max(0) as usize;
    let a = unsafe { std::slice::from_raw_parts(invec.cast::<u16>().cast_const(), n) };
    let b = unsafe { std::slice::from_raw_parts_mut(inoutvec.cast::<u16>(), n) };
    crate::half::add_halves(a, b);
}

/// [`Collective`] over an MPI communicator (rsmpi).
pub struct MpiCollective {
    comm: SimpleCommunicator,
    /// The user-defined binary16 sum (freed with the collective, before `MPI_Finalize`).
    half_sum: UnsafeUserOperation,
}

impl MpiCollective {
    /// Wrap a communicator (usually `universe.world()`).
    pub fn new(comm: SimpleCommunicator) -> Self {
        // SAFETY: `half_sum_op` only touches the two buffers MPI passes, as `u16`, and it is
        // only used by `all_reduce_sum_f16`, whose buffers are `u16`.
        let half_sum = unsafe { UnsafeUserOperation::commutative(half_sum_op) };
        Self { comm, half_sum }
    }

    /// The underlying communicator, for the non-blocking exchange and the network probe.
    pub fn comm(&self) -> &SimpleCommunicator {
        &self.comm
    }
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }

    fn size(&self) -> usize {
        self.comm.size() as usize
    }

    fn barrier(&self) {
        self.comm.barrier();
    }

    fn all_reduce_sum_f32(&self, send: &[f32], recv: &mut [f32]) {
        assert_eq!(send.len(), recv.len(), "allreduce buffers differ in length");
        self.comm
            .all_reduce_into(send, recv, SystemOperation::sum());
    }

    fn all_reduce_sum_f16(&self, send: &[u16], recv: &mut [u16]) {
        assert_eq!(send.len(), recv.len(), "allreduce buffers differ in length");
        self.comm.all_reduce_into(send, recv, &self.half_sum);
    }

    fn all_reduce_f64(&self, send: &[f64], recv: &mut [f64], op: ReduceOp) {
        assert_eq!(send.len(), recv.len(), "allreduce buffers differ in length");
        match op {
            ReduceOp::Sum => self
                .comm
                .all_reduce_into(send, recv, SystemOperation::sum()),
            ReduceOp::Min => self
                .comm
                .all_reduce_into(send, recv, SystemOperation::min()),
            ReduceOp::Max => self
                .comm
                .all_reduce_into(send, recv, SystemOperation::max()),
        }
    }

    fn all_gather_bytes(&self, send: &[u8], recv: &mut [u8]) -> Result<()> {
        mpi_count(recv.len(), "allgather receive buffer")?;
        if recv.len() != send.len() * self.size() {
            return Err(Error::Other(format!(
                "allgather: receive buffer {} bytes, expected {} x {} ranks",
                recv.len(),
                send.len(),
                self.size()
            )));
        }
        self.comm.all_gather_into(send, recv);
        Ok(())
    }

    fn all_gather_varcount_bytes(
        &self,
        send: &[u8],
        counts: &[i32],
        displs: &[i32],
        recv: &mut [u8],
    ) -> Result<()> {
        mpi_count(recv.len(), "allgatherv receive buffer")?;
        let mut part = PartitionMut::new(recv, counts, displs);
        self.comm.all_gather_varcount_into(send, &mut part);
        Ok(())
    }

    fn all_gather_u64(&self, value: u64) -> Vec<u64> {
        let mut out = vec![0u64; self.size()];
        self.comm.all_gather_into(&value, &mut out[..]);
        out
    }

    fn all_gather_f64(&self, send: &[f64]) -> Vec<f64> {
        let mut out = vec![0f64; send.len() * self.size()];
        self.comm.all_gather_into(send, &mut out[..]);
        out
    }

    fn broadcast_bytes(&self, buf: &mut Vec<u8>) -> Result<()> {
        let root = self.comm.process_at_rank(0);
        let mut len = buf.len() as u64;
        root.broadcast_into(&mut len);
        let len = usize::try_from(len)
            .map_err(|_| Error::Other(format!("broadcast of {len} bytes does not fit memory")))?;
        mpi_count(len, "broadcast")?;
        buf.resize(len, 0);
        root.broadcast_into(&mut buf[..]);
        Ok(())
    }

    fn abort(&self, code: i32) -> ! {
        self.comm.abort(code)
    }

    /// Non-blocking version: every posted item starts an `MPI_Iallgather`, and every post also
    /// tests the items still in flight (neither Open MPI nor MPICH progresses a collective
    /// outside MPI calls, so the tests are what moves them on while `produce` computes); all
    /// are completed after `produce` returns (also when it fails, so no request outlives its
    /// buffers).
    fn all_gather_pipelined(
        &self,
        sends: &mut [Vec<u8>],
        recv: &mut [Vec<u8>],
        produce: &mut Produce<'_>,
    ) -> Result<PipelineTimes> {
        let p = self.size();
        let mut comm_s = 0.0;
        let mut hidden_s = 0.0;
        let result = mpi::request::scope(|scope| {
            let mut send_slots: Vec<Option<&mut Vec<u8>>> = sends.iter_mut().map(Some).collect();
            let mut recv_slots: Vec<Option<&mut Vec<u8>>> = recv.iter_mut().map(Some).collect();
            // (posted at, request) of the items still in flight, oldest first.
            let mut requests = std::collections::VecDeque::with_capacity(send_slots.len());
            let mut post = |i: usize, bytes: &[u8]| -> Result<()> {
                let s = send_slots.get_mut(i).and_then(Option::take);
                let r = recv_slots.get_mut(i).and_then(Option::take);
                let (Some(s), Some(r)) = (s, r) else {
                    return Err(Error::Other(format!(
                        "pipelined allgather: item {i} posted twice or out of range"
                    )));
                };
                s.clear();
                s.extend_from_slice(bytes);
                r.resize(bytes.len() * p, 0);
                mpi_count(r.len(), "pipelined allgather")?;
                let s: &Vec<u8> = s;
                let t = Instant::now();
                // Test each pending item once (rotating through the queue, no allocation).
                for _ in 0..requests.len() {
                    let Some((posted, req)): Option<(Instant, _)> = requests.pop_front() else {
                        break;
                    };
                    match mpi::request::Request::test(req) {
                        Ok(_) => hidden_s += posted.elapsed().as_secs_f64(),
                        Err(req) => requests.push_back((posted, req)),
                    }
                }
                requests.push_back((
                    Instant::now(),
                    self.comm
                        .immediate_all_gather_into(scope, &s[..], &mut r[..]),
                ));
                comm_s += t.elapsed().as_secs_f64();
                Ok(())
            };
            let res = produce(&mut post);
            let t = Instant::now();
            for (_, r) in requests {
                r.wait();
            }
            comm_s += t.elapsed().as_secs_f64();
            res
        });
        result.map(|()| PipelineTimes { comm_s, hidden_s })
    }
}

/// A world of one rank, without MPI: for unit tests and embedding.
#[derive(Clone, Copy, Debug, Default)]
pub struct SelfCollective;

impl Collective for SelfCollective {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn barrier(&self) {}
    fn all_reduce_sum_f32(&self, send: &[f32], recv: &mut [f32]) {
        recv.copy_from_slice(send);
    }
    fn all_reduce_sum_f16(&self, send: &[u16], recv: &mut [u16]) {
        recv.copy_from_slice(send);
    }
    fn all_reduce_f64(&self, send: &[f64], recv: &mut [f64], _op: ReduceOp) {
        recv.copy_from_slice(send);
    }
    fn all_gather_bytes(&self, send: &[u8], recv: &mut [u8]) -> Result<()> {
        if recv.len() != send.len() {
            return Err(Error::Other("allgather: buffer length mismatch".into()));
        }
        recv.copy_from_slice(send);
        Ok(())
    }
    fn all_gather_varcount_bytes(
        &self,
        send: &[u8],
        counts: &[i32],
        displs: &[i32],
        recv: &mut [u8],
    ) -> Result<()> {
        let (c, d) = (counts[0] as usize, displs[0] as usize);
        if c != send.len() || d + c > recv.len() {
            return Err(Error::Other("allgatherv: buffer length mismatch".into()));
        }
        recv[d..d + c].copy_from_slice(send);
        Ok(())
    }
    fn all_gather_u64(&self, value: u64) -> Vec<u64> {
        vec![value]
    }
    fn all_gather_f64(&self, send: &[f64]) -> Vec<f64> {
        send.to_vec()
    }
    fn broadcast_bytes(&self, _buf: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}
