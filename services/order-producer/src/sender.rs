//! The Order API's sends: every order goes to `grocery.orders.v1` inside a Kafka transaction
//! of the API's transactional producer (`transactional.id` from `--transactional-id`, stable
//! per instance).
//!
//! Once the API listens, one task initialises the producer's transactions ([`init`]), reads
//! back the idempotency keys (`crate::restore`) and then sends ([`run`]): orders
//! queued meanwhile wait. It commits the orders queued meanwhile together: it takes the
//! first order waiting, then every other already queued (up to [`MAX_BATCH`]), begins a
//! transaction, hands them all to the producer, waits for the broker's acknowledgements,
//! commits, and only then tells each request its order is accepted. A request is answered
//! `202` only for an order whose transaction committed, so a second client reading
//! read_committed sees every order the API accepted, and nothing it did not.
//!
//! Why transactions: a process that dies with a record sent but not committed leaves an open
//! transaction; the next start of the same instance initialises its producer with the same
//! `transactional.id`, which aborts it (and fences the dead one, should it come back). What the
//! new instance then reads back from the topic (`crate::restore`) is exactly what
//! was accepted: no record in flight can land after it has looked.
//!
//! A transaction that fails before its commit is aborted, and its requests are told at once
//! (`Failed`: a retry sends again, in a later transaction).
//! A commit that fails with a retriable error is retried (its outcome is not known until it
//! succeeds or the broker says it must be aborted); a fatal error (fenced by another instance
//! with the same `transactional.id`, a producer in an unrecoverable state) stops the sender and
//! the process, leaving the requests of the transaction unanswered rather than guessing.

use std::time::Duration;

use grocery_events::{Delivered, Headers, Order, Producer, TraceContext, topics};
use rdkafka::{
    error::{KafkaError, RDKafkaError},
    producer::Producer as _,
};
use service_kit::Shutdown;
use tokio::sync::{mpsc, oneshot};

use crate::failpoint;

/// Orders committed in one transaction at most.
pub(crate) const MAX_BATCH: usize = 500;

/// Orders waiting for the sender at most; past it a request waits for room (within its
/// deadline).
const QUEUE: usize = 10_000;

/// How long one commit or abort may take before it is retried.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// First and longest wait between attempts to initialise the transactional producer.
const INIT_RETRY_FIRST: Duration = Duration::from_millis(500);
const INIT_RETRY_MAX: Duration = Duration::from_secs(10);

/// How long one attempt to initialise the transactions may take.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Initialises `producer`'s transactions (aborting what the previous run of this
/// `transactional.id` left open), retried while the brokers cannot be reached; `false` when
/// `shutdown` comes first.
///
/// # Errors
/// When the brokers refuse the client (credentials, no right to the transactional id).
pub(crate) async fn init(producer: &Producer, shutdown: &Shutdown) -> anyhow::Result<bool> {
    let stop = shutdown.requested();
    tokio::pin!(stop);
    let mut backoff = INIT_RETRY_FIRST;
    loop {
        tokio::select! {
            () = &mut stop => return Ok(false),
            done = producer.init_transactions(INIT_TIMEOUT) => match done {
                Ok(()) => return Ok(true),
                Err(error) if error.is_refused() => return Err(error.into()),
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "cannot initialise the transactions yet");
                }
            },
        }
        tokio::select! {
            () = &mut stop => return Ok(false),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(INIT_RETRY_MAX);
    }
}

/// How an order's send ended, as its request learns it.
pub(crate) type SendResult = Result<Delivered, String>;

struct Job {
    order: Order,
    trace: TraceContext,
    headers: Headers,
    done: oneshot::Sender<SendResult>,
}

/// Queues orders for the transactional sender ([`run`]).
#[derive(Clone)]
pub(crate) struct Sender {
    jobs: mpsc::Sender<Job>,
}

impl Sender {
    /// Sends `order` with `headers` in `trace`, and resolves once its transaction committed
    /// (`Ok`) or was aborted (`Err`, with the cause for the log). Never resolves for the
    /// orders of a transaction whose outcome the sender cannot know (it then stops the process).
    pub(crate) async fn send(
        &self,
        order: Order,
        trace: TraceContext,
        headers: Headers,
    ) -> SendResult {
        let (done, outcome) = oneshot::channel();
        let job = Job {
            order,
            trace,
            headers,
            done,
        };
        if self.jobs.send(job).await.is_err() {
            return Err("the Order API is stopping: no more orders are sent".to_owned());
        }
        match outcome.await {
            Ok(result) => result,
            // The sender stopped without an outcome: the process is stopping; what the
            // transaction became is read back by the next start.
            Err(_) => std::future::pending().await,
        }
    }
}

/// The orders queued for the sender, until [`run`] takes them.
pub(crate) struct Queue(mpsc::Receiver<Job>);

/// A sender and its queue: requests may queue orders before [`run`] starts (they wait within
/// their deadline).
pub(crate) fn channel() -> (Sender, Queue) {
    let (jobs, queue) = mpsc::channel(QUEUE);
    (Sender { jobs }, Queue(queue))
}

/// Sends the queued orders in transactions of `producer` (initialised: [`init`]) until
/// `shutdown`, then commits what is still queued.
///
/// # Errors
/// A fatal producer error (the transaction's outcome unknown); the caller stops the process.
pub(crate) async fn run(
    producer: &Producer,
    Queue(mut queue): Queue,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let stop = shutdown.requested();
    tokio::pin!(stop);
    loop {
        let first = tokio::select! {
            job = queue.recv() => job,
            () = &mut stop => None,
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(producer, batch, shutdown).await?;
    }
    // Stopping: what is queued still gets its transaction.
    queue.close();
    let mut batch = Vec::new();
    while let Ok(job) = queue.try_recv() {
        batch.push(job);
        if batch.len() == MAX_BATCH {
            commit_batch(producer, std::mem::take(&mut batch), shutdown).await?;
        }
    }
    if !batch.is_empty() {
        commit_batch(producer, batch, shutdown).await?;
    }
    Ok(())
}

/// Sends `batch` in one transaction and tells each job how it ended.
async fn commit_batch(
    producer: &Producer,
    batch: Vec<Job>,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    match transaction(producer, &batch).await {
        Ok(delivered) => {
            for (job, delivered) in batch.into_iter().zip(delivered) {
                let _ = job.done.send(Ok(delivered));
            }
            Ok(())
        }
        Err(Ended::Aborted(cause)) => {
            tracing::warn!(orders = batch.len(), %cause, "transaction aborted; its orders were not accepted");
            for job in batch {
                let _ = job.done.send(Err(cause.clone()));
            }
            Ok(())
        }
        Err(Ended::MustAbort(cause)) => {
            // This transaction is never committed, whatever the abort below meets (should the
            // process stop first, the next start's initialisation or the broker's transaction
            // timeout aborts it): its requests learn that now, not after the abort, which
            // waits for the broker. Their retries go into later transactions.
            tracing::warn!(orders = batch.len(), %cause, "transaction to abort; its orders are not accepted");
            for job in batch {
                let _ = job.done.send(Err(cause.clone()));
            }
            match abort(producer, cause, shutdown).await {
                Ended::Fatal(error) => Err(error),
                _ => Ok(()),
            }
        }
        Err(Ended::Fatal(error)) => Err(error),
    }
}

/// How a transaction that did not commit ended.
enum Ended {
    /// Aborted, or never begun: none of its records is visible read_committed.
    Aborted(String),
    /// Failed before its commit: it is to be aborted, never committed.
    MustAbort(String),
    /// The producer cannot go on, and the transaction's outcome is not known here.
    Fatal(anyhow::Error),
}

async fn transaction(producer: &Producer, batch: &[Job]) -> Result<Vec<Delivered>, Ended> {
    let native = producer.rdkafka().clone();
    native
        .begin_transaction()
        .map_err(|error| fatal_or(error, |e| Ended::Aborted(format!("cannot begin: {e}"))))?;
    let mut pending = Vec::with_capacity(batch.len());
    for job in batch {
        match producer
            .enqueue_traced(
                topics::ORDERS,
                &job.order,
                Some(&job.headers),
                Some(&job.trace),
            )
            .await
        {
            Ok(delivery) => pending.push(delivery),
            Err(error) => return Err(Ended::MustAbort(error.to_string())),
        }
    }
    let mut delivered = Vec::with_capacity(batch.len());
    for result in futures::future::join_all(pending).await {
        match result {
            Ok(done) => delivered.push(done),
            Err(error) => return Err(Ended::MustAbort(error.to_string())),
        }
    }
    failpoint::hit("before-commit");
    loop {
        let native = native.clone();
        let committed =
            tokio::task::spawn_blocking(move || native.commit_transaction(TRANSACTION_TIMEOUT))
                .await
                .map_err(|e| Ended::Fatal(anyhow::anyhow!("the commit task failed: {e}")))?;
        match committed {
            Ok(()) => break,
            Err(KafkaError::Transaction(error)) if error.txn_requires_abort() => {
                return Err(Ended::MustAbort(format!("commit refused: {error}")));
            }
            Err(KafkaError::Transaction(error)) if error.is_retriable() => {
                tracing::warn!(%error, "commit not confirmed yet; retrying it");
            }
            Err(error) => {
                return Err(Ended::Fatal(
                    anyhow::Error::new(error).context("committing the orders' transaction"),
                ));
            }
        }
    }
    failpoint::hit("after-commit");
    Ok(delivered)
}

/// Aborts the open transaction (retried while the broker says it may be); `cause` is why.
/// Once the shutdown is requested it stops waiting: the transaction is never committed, and
/// the next start's initialisation (or the broker's transaction timeout) aborts it.
async fn abort(producer: &Producer, cause: String, shutdown: &Shutdown) -> Ended {
    let stop = shutdown.requested();
    tokio::pin!(stop);
    loop {
        let native = producer.rdkafka().clone();
        let attempt =
            tokio::task::spawn_blocking(move || native.abort_transaction(TRANSACTION_TIMEOUT));
        let aborted = tokio::select! {
            aborted = attempt => aborted,
            () = &mut stop => {
                tracing::warn!(%cause, "stopping with a transaction not aborted yet; the next start aborts it");
                return Ended::Aborted(cause);
            }
        };
        match aborted {
            Ok(Ok(())) => return Ended::Aborted(cause),
            Ok(Err(KafkaError::Transaction(error))) if error.is_retriable() => {
                tracing::warn!(%error, "abort not confirmed yet; retrying it");
            }
            Ok(Err(error)) => {
                return Ended::Fatal(
                    anyhow::Error::new(error)
                        .context(format!("aborting the transaction after: {cause}")),
                );
            }
            Err(error) => return Ended::Fatal(anyhow::anyhow!("the abort task failed: {error}")),
        }
    }
}

/// [`Ended::Fatal`] for a fatal producer error, else what `otherwise` makes of it.
fn fatal_or(error: KafkaError, otherwise: impl FnOnce(&KafkaError) -> Ended) -> Ended {
    let fatal = matches!(&error, KafkaError::Transaction(e) if RDKafkaError::is_fatal(e));
    if fatal {
        Ended::Fatal(anyhow::Error::new(error).context("beginning a transaction"))
    } else {
        otherwise(&error)
    }
}
