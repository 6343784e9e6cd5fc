//! What `LatestStatus` keeps per order: picklist-consumer folds every status of the topic into
//! it at start (one entry per order of the history), so an order that only went through
//! fulfillment (RECEIVED, PICKLIST_CREATED: most of a history) must cost a few dozen bytes,
//! not a whole status record.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
};

use grocery_events::OrderState;
use grocery_store::{LatestStatus, lifecycle::status};
use uuid::Uuid;

/// The system's allocator, counting the bytes held (this test binary runs one test).
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller's contract.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: as the caller's contract.
        unsafe { System.dealloc(pointer, layout) };
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn an_order_only_fulfillment_touched_holds_at_most_64_bytes() {
    const ORDERS: u128 = 100_000;
    let mut latest = LatestStatus::default();
    let before = HELD.load(Ordering::Relaxed);
    for n in 0..ORDERS {
        let order = Uuid::from_u128(n + 1);
        for state in [OrderState::Received, OrderState::PicklistCreated] {
            let mut change = status(order, state, 1, "fulfillment-service");
            change.picklist_id = Some(Uuid::from_u128(n + 1 + ORDERS));
            latest.apply(change);
        }
    }
    let held = HELD.load(Ordering::Relaxed) - before;
    let per_order = held / ORDERS as isize;
    assert_eq!(latest.len(), ORDERS as usize);
    assert!(
        per_order <= 64,
        "{ORDERS} orders hold {per_order} bytes of heap each (at most 64)"
    );
    // Staff's changes are kept whole: a repeated step is answered with them.
    let order = Uuid::from_u128(1);
    latest.apply(status(order, OrderState::PickingStarted, 2, "staff:Ana"));
    let (state, last) = latest.board_state(order).unwrap();
    assert_eq!(state, OrderState::PickingStarted);
    assert_eq!(last.map(|s| s.actor), Some("staff:Ana".to_owned()));
}
