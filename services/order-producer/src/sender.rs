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
//! A transaction that fails before its commit is aborted as soon as one of its records fails
//! (not after the others' acknowledgements, which librdkafka may hold until the abort), and
//! its requests are told at once ([`NotSent`]: a retry sends again, in a later transaction).
//! A commit that fails with a retriable error is retried (its outcome is not known until it
//! succeeds or the broker says it must be aborted); a fatal error (fenced by another instance
//! with the same `transactional.id`, a producer in an unrecoverable state) stops the sender and
//! the process, leaving the requests of the transaction unanswered rather than guessing.
//!
//! When the broker refuses something, the requests learn what ([`Failure`]):
//! - **a record too large** for the orders topic (its `max.message.bytes`, or the client's):
//!   the transaction is aborted; a transaction of one order tells it [`Failure::TooLarge`],
//!   one of several sends each of its orders again in a transaction of its own (a record
//!   batch of small orders can be too large together; an order is refused as too large only
//!   when it is alone), so the others are accepted. librdkafka keeps the sequence numbers of
//!   a record the broker refused, so the next transaction on that partition fails
//!   (`OUT_OF_ORDER_SEQUENCE_NUMBER`, its records purged) until an abort bumps the producer's
//!   epoch: a transaction whose records were only purged is sent again once after its abort.
//! - **an order the registered order contract refuses** (a rule failed on it; the API's own
//!   validation answers `400` for what the contract checks today, so only a contract stricter
//!   than the API meets this): handled as a record too large, above: alone in its
//!   transaction it is told [`Failure::RefusedByContract`] and stored nowhere (the rule's
//!   dead letter, written in the transaction, is aborted with it), the others of its
//!   transaction are sent again one by one. A dead letter the broker refuses does not change
//!   that answer: the order is at fault, not the API.
//! - **the transactional id (or the orders topic) not authorized** (never granted, or the ACL
//!   removed while running): nothing of that transaction is committed, so its requests, every
//!   order still queued and every later request are told [`Failure::TransactionalIdRefused`]
//!   ([`Failure::TopicRefused`]) and the sender stops with an error the service reports with
//!   exit status 3 (refused). A topic refused when its partition is added to the transaction
//!   shows only as purged records: the sender then asks the transaction's commit, which names
//!   the error that doomed it (and never commits a transaction with a failed record). A
//!   restart once the grant is back aborts whatever the broker still holds open and sends the
//!   retries.
//!
//! What counts as which failure: `crate::failure`.

use std::time::Duration;

use futures::{StreamExt as _, stream::FuturesUnordered};
use grocery_events::{Delivered, Headers, Order, Producer, TraceContext, topics};
use rdkafka::{error::KafkaError, producer::Producer as _};
use service_kit::Shutdown;
use tokio::sync::{mpsc, oneshot, watch};

use crate::{
    failpoint,
    failure::{Ended, Failure, NotSent, fatal_or, not_delivered, refused, refused_failure},
};

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
pub(crate) async fn init(
    producer: &Producer,
    shutdown: &Shutdown,
) -> Result<bool, grocery_events::Error> {
    failpoint::hold("before-init").await;
    let stop = shutdown.requested();
    tokio::pin!(stop);
    let mut backoff = INIT_RETRY_FIRST;
    loop {
        tokio::select! {
            () = &mut stop => return Ok(false),
            done = producer.init_transactions(INIT_TIMEOUT) => match done {
                Ok(()) => return Ok(true),
                Err(error) if error.is_refused() => return Err(error),
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
pub(crate) type SendResult = Result<Delivered, NotSent>;

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
    /// Set once the broker has refused the sender ([`Queue::refuse`]).
    refused: watch::Receiver<Option<NotSent>>,
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
        if let Some(refused) = self.refused() {
            return Err(refused);
        }
        let order_id = job.order.order_id;
        if self.jobs.send(job).await.is_err() {
            return Err(self.refused().unwrap_or_else(|| {
                NotSent::new(
                    Failure::Unavailable,
                    "the Order API is stopping: no more orders are sent",
                )
            }));
        }
        tracing::debug!(%order_id, "order queued for the sender");
        match outcome.await {
            Ok(result) => result,
            Err(_) => match self.refused() {
                Some(refused) => Err(refused),
                // The sender stopped without an outcome: the process is stopping; what the
                // transaction became is read back by the next start.
                None => std::future::pending().await,
            },
        }
    }

    /// Why the broker refuses every order, once it has.
    pub(crate) fn refused(&self) -> Option<NotSent> {
        self.refused.borrow().clone()
    }

    /// Resolves once the broker has refused the sender (never, if it does not).
    pub(crate) async fn wait_refused(&self) -> NotSent {
        let mut refused = self.refused.clone();
        let seen = refused
            .wait_for(Option::is_some)
            .await
            .map(|refused| refused.clone());
        match seen {
            Ok(refused) => refused.unwrap_or_else(unreachable_refusal),
            // The queue is gone without a refusal: the process is stopping.
            Err(_) => std::future::pending().await,
        }
    }
}

/// `wait_for(Option::is_some)` gave `None`: cannot happen; answered as unavailable.
fn unreachable_refusal() -> NotSent {
    NotSent::new(Failure::Unavailable, "no refusal recorded")
}

/// The orders queued for the sender, until [`run`] takes them.
pub(crate) struct Queue {
    jobs: mpsc::Receiver<Job>,
    refused: watch::Sender<Option<NotSent>>,
}

impl Queue {
    /// The broker refused the sender (`error`, an authorization failure): every request now
    /// queued or to come is told so; nothing more is sent.
    pub(crate) fn refuse(mut self, error: &grocery_events::Error) {
        let refused = NotSent::new(refused_failure(error), error.to_string());
        self.refused.send_replace(Some(refused.clone()));
        self.jobs.close();
        while let Ok(job) = self.jobs.try_recv() {
            let _ = job.done.send(Err(refused.clone()));
        }
    }
}

/// A sender and its queue: requests may queue orders before [`run`] starts (they wait within
/// their deadline).
pub(crate) fn channel() -> (Sender, Queue) {
    let (jobs, queue) = mpsc::channel(QUEUE);
    let (refused, refused_receiver) = watch::channel(None);
    (
        Sender {
            jobs,
            refused: refused_receiver,
        },
        Queue {
            jobs: queue,
            refused,
        },
    )
}

/// Sends the queued orders in transactions of `producer` (initialised: [`init`]) until
/// `shutdown`, then commits what is still queued.
///
/// # Errors
/// A fatal producer error (the transaction's outcome unknown), or the broker's refusal of the
/// transactional id or the topic (a [`grocery_events::Error`] whose `is_refused` holds: the
/// queue is then refused, [`Queue::refuse`]); the caller stops the process.
pub(crate) async fn run(
    producer: &Producer,
    mut queue: Queue,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    match send_until_stopped(producer, &mut queue.jobs, shutdown).await {
        Err(Stop::Refused(error)) => {
            queue.refuse(&error);
            Err(error.into())
        }
        Err(Stop::Fatal(error)) => Err(error),
        Ok(()) => Ok(()),
    }
}

/// Why the sender stops before the shutdown.
enum Stop {
    /// The broker refuses the transactional id or the topic.
    Refused(grocery_events::Error),
    /// The producer cannot go on; a transaction's outcome is not known.
    Fatal(anyhow::Error),
}

async fn send_until_stopped(
    producer: &Producer,
    queue: &mut mpsc::Receiver<Job>,
    shutdown: &Shutdown,
) -> Result<(), Stop> {
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

/// Sends `batch` in one transaction and tells each job how it ended. A transaction that
/// meets a record too large is aborted and its orders, when several, are sent again each in
/// a transaction of its own.
async fn commit_batch(
    producer: &Producer,
    batch: Vec<Job>,
    shutdown: &Shutdown,
) -> Result<(), Stop> {
    // Each batch with whether it is already sent again after its records were purged.
    let mut batches = vec![(batch, false)];
    while let Some((batch, again)) = batches.pop() {
        let ended = match transaction(producer, &batch).await {
            Ok(delivered) => {
                for (job, delivered) in batch.into_iter().zip(delivered) {
                    let _ = job.done.send(Ok(delivered));
                }
                continue;
            }
            Err(ended) => ended,
        };
        match ended {
            Ended::Aborted(cause) => {
                tracing::warn!(orders = batch.len(), %cause, "transaction aborted; its orders were not accepted");
                tell(batch, &NotSent::new(Failure::Unavailable, cause));
            }
            Ended::Purged(cause) if !again => {
                tracing::warn!(orders = batch.len(), %cause, "transaction to abort for the producer's own state; sending its orders again once");
                match abort(producer, cause.clone(), shutdown).await {
                    Ok(true) => batches.push((batch, true)),
                    aborted => {
                        // Never committed (its records failed): its requests learn it.
                        tell(batch, &NotSent::new(Failure::Unavailable, cause));
                        aborted?;
                    }
                }
            }
            Ended::MustAbort(cause) | Ended::Purged(cause) => {
                // This transaction is never committed, whatever the abort below meets (should
                // the process stop first, the next start's initialisation or the broker's
                // transaction timeout aborts it): its requests learn that now, not after the
                // abort, which waits for the broker. Their retries go into later transactions.
                tracing::warn!(orders = batch.len(), %cause, "transaction to abort; its orders are not accepted");
                tell(batch, &NotSent::new(Failure::Unavailable, cause.clone()));
                abort(producer, cause, shutdown).await?;
            }
            Ended::RefusedByContract(cause) if batch.len() == 1 => {
                tracing::warn!(%cause, "an order the order contract refuses; not accepted");
                tell(
                    batch,
                    &NotSent::new(Failure::RefusedByContract, cause.clone()),
                );
                abort(producer, cause, shutdown).await?;
            }
            Ended::RefusedByContract(cause) => {
                // Which order breaks the contract is known once each is alone in its
                // transaction; the others are then accepted.
                tracing::warn!(orders = batch.len(), %cause, "an order the order contract refuses; sending the transaction's orders again one by one");
                match abort(producer, cause.clone(), shutdown).await {
                    Ok(true) => {
                        batches.extend(batch.into_iter().rev().map(|job| (vec![job], again)));
                    }
                    aborted => {
                        tell(batch, &NotSent::new(Failure::Unavailable, cause));
                        aborted?;
                    }
                }
            }
            Ended::TooLarge(cause) if batch.len() == 1 => {
                tracing::warn!(%cause, "an order too large for the broker; not accepted");
                tell(batch, &NotSent::new(Failure::TooLarge, cause.clone()));
                abort(producer, cause, shutdown).await?;
            }
            Ended::TooLarge(cause) => {
                // Which order is too large (or whether only their record batch is) is known
                // once each is alone in its transaction; the others are then accepted.
                tracing::warn!(orders = batch.len(), %cause, "a record too large for the broker; sending the transaction's orders again one by one");
                match abort(producer, cause.clone(), shutdown).await {
                    Ok(true) => {
                        batches.extend(batch.into_iter().rev().map(|job| (vec![job], again)));
                    }
                    aborted => {
                        tell(batch, &NotSent::new(Failure::Unavailable, cause));
                        aborted?;
                    }
                }
            }
            Ended::Refused(error) => {
                tracing::error!(orders = batch.len(), %error, "the broker refuses the Order API's transactions; its orders are not accepted");
                // Nothing of a refused transaction is committed: the broker aborts it (at
                // its timeout, or when this transactional id is initialised again).
                let not_sent = NotSent::new(refused_failure(&error), error.to_string());
                tell(batch, &not_sent);
                for (rest, _) in batches {
                    tell(rest, &not_sent);
                }
                return Err(Stop::Refused(error));
            }
            Ended::Fatal(error) => return Err(Stop::Fatal(error)),
        }
    }
    Ok(())
}

/// Tells every job of `batch` that its order was not accepted.
fn tell(batch: Vec<Job>, not_sent: &NotSent) {
    for job in batch {
        let _ = job.done.send(Err(not_sent.clone()));
    }
}

async fn transaction(producer: &Producer, batch: &[Job]) -> Result<Vec<Delivered>, Ended> {
    let native = producer.rdkafka().clone();
    if let Err(error) = native.begin_transaction() {
        return Err(refused(producer, error.rdkafka_error_code())
            .unwrap_or_else(|| fatal_or(error, |e| Ended::Aborted(format!("cannot begin: {e}")))));
    }
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
            Err(error) => return Err(not_delivered(producer, &[error])),
        }
    }
    // The first record that fails dooms the transaction: it is aborted at once, not after
    // the other records' deliveries (once the transaction must be aborted, librdkafka may
    // hold them until the abort, or until their message timeout).
    let mut deliveries: FuturesUnordered<_> = pending
        .into_iter()
        .enumerate()
        .map(|(index, delivery)| async move { (index, delivery.await) })
        .collect();
    let mut delivered = vec![None; batch.len()];
    while let Some((index, result)) = deliveries.next().await {
        match result {
            Ok(done) => delivered[index] = Some(done),
            Err(error) => {
                return Err(match not_delivered(producer, &[error]) {
                    Ended::Purged(cause) => why_purged(producer, cause).await,
                    ended => ended,
                });
            }
        }
    }
    let delivered: Vec<Delivered> = delivered.into_iter().flatten().collect();
    failpoint::hit("before-commit");
    failpoint::hold("before-commit").await;
    loop {
        let native = native.clone();
        let committed =
            tokio::task::spawn_blocking(move || native.commit_transaction(TRANSACTION_TIMEOUT))
                .await
                .map_err(|e| Ended::Fatal(anyhow::anyhow!("the commit task failed: {e}")))?;
        if let Err(error) = &committed
            && let Some(refusal) = refused(producer, error.rdkafka_error_code())
        {
            return Err(refusal);
        }
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

/// Why the open transaction, whose records were purged (`cause`), must be aborted: a record's
/// failure makes the transaction's commit fail with the error that doomed it (librdkafka's
/// `rd_kafka_commit_transaction`: a transaction with a failed delivery is never committed),
/// which names what a purge does not (the broker's refusal of the topic when the records'
/// partitions were added to the transaction, a stale sequence number).
async fn why_purged(producer: &Producer, cause: String) -> Ended {
    let native = producer.rdkafka().clone();
    let asked =
        tokio::task::spawn_blocking(move || native.commit_transaction(TRANSACTION_TIMEOUT)).await;
    match asked {
        Ok(Err(error)) => {
            let code = error.rdkafka_error_code();
            refused(producer, code).unwrap_or_else(|| {
                tracing::warn!(%error, "the transaction of the purged records must be aborted");
                Ended::Purged(cause)
            })
        }
        Ok(Ok(())) => Ended::Fatal(anyhow::anyhow!(
            "a transaction with a failed record committed ({cause}): its orders' outcome is not known"
        )),
        Err(error) => Ended::Fatal(anyhow::anyhow!("the commit task failed: {error}")),
    }
}

/// Aborts the open transaction (retried while the broker says it may be); `cause` is why.
/// `true` once aborted; `false` when the shutdown came first: the transaction is never
/// committed, and the next start's initialisation (or the broker's transaction timeout)
/// aborts it.
async fn abort(producer: &Producer, cause: String, shutdown: &Shutdown) -> Result<bool, Stop> {
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
                return Ok(false);
            }
        };
        match aborted {
            Ok(Ok(())) => return Ok(true),
            Ok(Err(error)) => {
                if let Some(Ended::Refused(refused)) = refused(producer, error.rdkafka_error_code())
                {
                    return Err(Stop::Refused(refused));
                }
                match error {
                    KafkaError::Transaction(error) if error.is_retriable() => {
                        tracing::warn!(%error, "abort not confirmed yet; retrying it");
                    }
                    error => {
                        return Err(Stop::Fatal(
                            anyhow::Error::new(error)
                                .context(format!("aborting the transaction after: {cause}")),
                        ));
                    }
                }
            }
            Err(error) => {
                return Err(Stop::Fatal(anyhow::anyhow!(
                    "the abort task failed: {error}"
                )));
            }
        }
    }
}
