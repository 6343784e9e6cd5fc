//! A transactional `Pipeline` whose partition is revoked and given back while a batch is open,
//! on the real broker with KIP-848 groups, read back `read_committed` by a second client.
//!
//! Member A reads the first orders into a batch held open (a long `batch_linger`, a batch size
//! not reached yet, A polling all the while). Member B joins: the group moves part of A's
//! partitions to B, which processes their orders and commits past them in its own
//! transactions, then leaves: the partitions come back to A under a new assignment. A's batch
//! is then filled up and must abort (its partitions were reassigned meanwhile). The abort must
//! not rewind the returned partitions to the batch's first offsets, which B has committed past:
//! every order has exactly one pick list.
//!
//! Built only with the `real-broker` feature:
//! `cargo test -p local-stack --features real-broker --test broker_pipeline_reassign`.

use std::{
    collections::BTreeSet,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use grocery_events::{
    Client, Config, Event as _, Order, PickList, Pipeline, PipelineOptions, topics,
};
use local_stack::{
    BrokerKind, KafkaAuth, Stack, StackOptions,
    verify::{committed_counts, wait_for},
};
use tokio::sync::oneshot;
use uuid::Uuid;

/// Orders in the batch held open while its partitions move.
const FIRST: u32 = 30;
/// A's batch size: the batch ends once `BATCH - FIRST` more orders are read.
const BATCH: usize = 40;

fn order(run: Uuid, n: u32) -> Order {
    grocery_stack::sample::milk_order(Uuid::new_v5(&run, &n.to_be_bytes()), run, 1)
}

/// A pipeline writing one pick list per order, running on its own task until stopped.
struct Member {
    pipeline: Arc<Pipeline<Order>>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<grocery_events::Result<()>>,
}

impl Member {
    /// Starts a member with its own client and waits until it owns a partition.
    async fn start(config: Config, options: PipelineOptions) -> Self {
        let client = Client::from_config(config).unwrap();
        let pipeline = Arc::new(client.pipeline::<Order>(options).await.unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn({
            let pipeline = pipeline.clone();
            async move {
                pipeline
                    .run(
                        |received| vec![grocery_stack::sample::pick_list_for(&received.event)],
                        async {
                            let _ = stopped.await;
                        },
                    )
                    .await
            }
        });
        let member = Self {
            pipeline,
            stop,
            task,
        };
        wait_for("a partition assigned", || !member.owned().is_empty()).await;
        member
    }

    /// The partitions of the orders topic this member owns now.
    fn owned(&self) -> BTreeSet<i32> {
        assert!(!self.task.is_finished(), "the member ended");
        self.pipeline
            .consumer()
            .context()
            .owned_partitions()
            .into_iter()
            .map(|(_, partition)| partition)
            .collect()
    }

    /// Stops the member, which must end cleanly.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(120), self.task)
            .await
            .expect("the member stops within two minutes")
            .expect("the task did not panic")
            .expect("the member ends without an error");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partition_given_back_within_a_batch_is_not_rewound_past_the_other_members_commit() {
    let stack = Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka {
            auth: KafkaAuth::None,
        },
        ..grocery_stack::options()
    })
    .await
    .unwrap();
    let run = Uuid::new_v4();
    let base = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set("group.protocol", "consumer");
    let client = Client::from_config(base.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    let group = format!("fulfillment-reassign-{}", run.simple());
    let send = async |range: std::ops::Range<u32>| {
        let mut partitions = Vec::new();
        for n in range {
            partitions.push(producer.send(&order(run, n)).await.unwrap().partition);
        }
        partitions
    };

    // A: one batch of up to BATCH orders, open for up to 90 s (the transaction may last
    // longer than librdkafka's default 60 s).
    let mut options = PipelineOptions::new(group.as_str());
    options.batch_size = BATCH;
    options.batch_linger = Duration::from_secs(90);
    let a = Member::start(
        base.clone()
            .set("transactional.id", format!("reassign-a-{run}"))
            .set("transaction.timeout.ms", "180000"),
        options,
    )
    .await;
    wait_for("A owning every partition", || {
        a.owned().len() == topics::PARTITIONS as usize
    })
    .await;
    let first_partitions = send(0..FIRST).await;
    let a_stats = a.pipeline.stats();
    wait_for("A reading the first orders into its batch", || {
        a_stats.consumed.load(Ordering::Relaxed) == u64::from(FIRST)
    })
    .await;

    // B joins and takes part of A's partitions, processes their orders and commits past them.
    let b = Member::start(
        base.clone()
            .set("transactional.id", format!("reassign-b-{run}")),
        PipelineOptions::new(group.as_str()),
    )
    .await;
    let moved = b.owned();
    let moved_orders = first_partitions
        .iter()
        .filter(|partition| moved.contains(partition))
        .count() as u64;
    assert!(
        moved_orders > 0,
        "B took partitions {moved:?} holding orders"
    );
    let b_stats = b.pipeline.stats();
    wait_for("B committing the moved partitions' pick lists", || {
        b_stats.produced_to(PickList::TOPIC) >= moved_orders
    })
    .await;
    assert!(a.owned().is_disjoint(&moved), "A gave the partitions up");

    // B leaves: the partitions come back to A, whose batch is still open.
    b.stop().await;
    wait_for("A owning every partition again", || {
        a.owned().len() == topics::PARTITIONS as usize
    })
    .await;
    assert_eq!(
        a_stats.transactions.load(Ordering::Relaxed),
        0,
        "A's first batch was still open when its partitions came back (batch_linger outlasted)"
    );

    // The orders that fill A's batch: it aborts (its partitions were reassigned meanwhile)…
    let closed = BATCH as u32;
    send(FIRST..closed).await;
    wait_for("A aborting its batch", || {
        a_stats.aborted.load(Ordering::Relaxed) >= 1
    })
    .await;
    // …and reads its inputs again: those B did not commit, plus as many more orders as B
    // committed, a full batch.
    let total = closed + moved_orders as u32;
    send(closed..total).await;
    wait_for("A committing the rest", || {
        a_stats.produced_to(PickList::TOPIC) + moved_orders >= u64::from(total)
    })
    .await;

    let wanted: BTreeSet<Uuid> = (0..total).map(|n| order(run, n).order_id).collect();
    let counts =
        committed_counts::<PickList>(stack.bootstrap_servers(), client.codec(), &wanted, |p| {
            p.order_id
        });
    a.stop().await;
    let missing = wanted.iter().filter(|id| !counts.contains_key(id)).count();
    let duplicated: Vec<u32> = (0..total)
        .filter(|n| counts.get(&order(run, *n).order_id).is_some_and(|c| *c > 1))
        .collect();
    eprintln!(
        "revoked and given back within a batch: {total} orders, partitions {moved:?} ({moved_orders} \
         orders) moved to B and back; read_committed: {} with a pick list, {missing} missing, \
         duplicated: {duplicated:?}; A aborted {} batch(es), committed {}",
        counts.len(),
        a_stats.aborted.load(Ordering::Relaxed),
        a_stats.transactions.load(Ordering::Relaxed),
    );
    assert_eq!(missing, 0, "every order has its pick list");
    assert!(
        duplicated.is_empty(),
        "orders with two pick lists (read again from before B's commit): {duplicated:?}"
    );
    drop((producer, client));
    stack.shutdown().await;
}
