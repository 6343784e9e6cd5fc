//! Tests of the staff board: pick order by delivery window then arrival, the cap on open lists
//! (the oldest arrival dropped, named, counted), finished lists kept within their own bound.

mod common;

use common::{order, small_catalog};
use grocery_events::{DeliveryWindow, OrderState, PickList};
use grocery_store::{
    BoardLimits, Inserted, PickListBuilder, PickedLine, PickerRoster, StaffBoard, StaffStep,
    StepRefused, StepStart, staff_status,
};
use uuid::Uuid;

const HOUR: i64 = 3_600_000;
const NOON: i64 = 1_735_732_800_000;

/// The pick list of order `n`, with a window starting `start_hours` after noon (`None`: no
/// window).
fn pick_list(n: u128, start_hours: Option<i64>) -> PickList {
    let catalog = small_catalog();
    let mut order = order(n, &[("PRO-1", 1)]);
    order.delivery_window = start_hours.map(|h| DeliveryWindow {
        start_time: NOON + h * HOUR,
        end_time: NOON + (h + 2) * HOUR,
    });
    PickListBuilder::new(&catalog, PickerRoster::default()).build(&order, NOON)
}

fn ids(board: &StaffBoard<()>) -> Vec<Uuid> {
    board
        .open_in_pick_order()
        .map(|entry| entry.pick_list.order_id)
        .collect()
}

fn id(n: u128) -> Uuid {
    order(n, &[]).order_id
}

#[test]
fn open_lists_come_earliest_window_first_then_by_arrival() {
    let mut board = StaffBoard::new(BoardLimits {
        open: 10,
        closed: 10,
    });
    // Arrival order 1..=6; windows 3 h, none, 1 h, 3 h, none, 1 h after noon.
    for (n, start) in [
        (1, Some(3)),
        (2, None),
        (3, Some(1)),
        (4, Some(3)),
        (5, None),
        (6, Some(1)),
    ] {
        assert!(matches!(
            board.insert(&pick_list(n, start), OrderState::PicklistCreated, None, ()),
            Inserted::Added { .. }
        ));
    }
    assert_eq!(ids(&board), [3, 6, 1, 4, 2, 5].map(id));
    // A list delivered again keeps its place.
    assert_eq!(
        board.insert(
            &pick_list(1, Some(3)),
            OrderState::PicklistCreated,
            None,
            ()
        ),
        Inserted::Known
    );
    assert_eq!(ids(&board), [3, 6, 1, 4, 2, 5].map(id));
}

#[test]
fn a_ready_list_leaves_the_open_lists_and_a_repeat_still_finds_it() {
    let mut board = StaffBoard::new(BoardLimits {
        open: 10,
        closed: 1,
    });
    for n in 1..=3 {
        board.insert(
            &pick_list(n, Some(n as i64)),
            OrderState::PicklistCreated,
            None,
            (),
        );
    }
    let ready = staff_status(&pick_list(1, Some(1)), StaffStep::Ready, NOON);
    assert!(board.advance(id(1), OrderState::Ready, Some(ready.clone())));
    assert_eq!(ids(&board), [2, 3].map(id));
    assert_eq!(board.get(id(1)).map(|e| e.state), Some(OrderState::Ready));
    assert_eq!(board.get(id(1)).and_then(|e| e.last.clone()), Some(ready));
    // A state behind the current one changes nothing.
    assert!(board.advance(id(1), OrderState::PickingStarted, None));
    assert_eq!(board.get(id(1)).map(|e| e.state), Some(OrderState::Ready));
    // Finished lists are bounded too: the second READY forgets the first.
    assert!(board.advance(id(2), OrderState::Ready, None));
    assert!(board.get(id(1)).is_none());
    let finished: Vec<Uuid> = board.finished().map(|e| e.pick_list.order_id).collect();
    assert_eq!(finished, [id(2)]);
    assert_eq!(board.len(), 2);
    assert_eq!(ids(&board), [id(3)]);
}

/// N > cap lists: the board stays at the cap, the lists dropped are the first arrivals (named
/// in the answer and counted), and those remaining are the last `cap` arrivals in pick order.
#[test]
fn past_the_cap_the_oldest_arrivals_are_dropped_and_the_size_stays_at_the_cap() {
    const CAP: usize = 100;
    const N: u128 = 1_000;
    let mut board = StaffBoard::new(BoardLimits {
        open: CAP,
        closed: 5,
    });
    let mut dropped_ids = Vec::new();
    for n in 1..=N {
        // Windows run backwards, so pick order and arrival order differ.
        let start = Some(i64::try_from(N - n).unwrap());
        match board.insert(&pick_list(n, start), OrderState::PicklistCreated, None, ()) {
            Inserted::Added { dropped, .. } => dropped_ids.extend(dropped),
            Inserted::Known => panic!("order {n} was new"),
        }
        assert!(board.open_len() <= CAP);
        assert!(board.len() <= CAP + 5);
    }
    assert_eq!(board.open_len(), CAP);
    assert_eq!(board.len(), CAP);
    assert_eq!(board.dropped(), (N as u64) - CAP as u64);
    let first: Vec<Uuid> = (1..=N - CAP as u128).map(id).collect();
    assert_eq!(dropped_ids, first);
    // The last CAP arrivals remain, the latest arrival (earliest window) first.
    let last: Vec<Uuid> = (N - CAP as u128 + 1..=N).rev().map(id).collect();
    assert_eq!(ids(&board), last);
    // Finished lists do not count against the open cap, and stay within their own bound.
    for n in N - CAP as u128 + 1..=N {
        assert!(board.advance(id(n), OrderState::Ready, None));
    }
    assert_eq!(board.open_len(), 0);
    assert_eq!(board.len(), 5);
}

/// Steps in lifecycle order only, one at a time per list; a repeat of the last step with the
/// same quantities is answered with the status recorded then, other quantities are refused.
#[test]
fn steps_follow_the_lifecycle_one_at_a_time_and_a_repeat_is_answered_again() {
    let mut board = StaffBoard::new(BoardLimits::default());
    let list = pick_list(1, None);
    let order_id = list.order_id;
    board.insert(&list, OrderState::PicklistCreated, None, ());
    assert_eq!(
        board.begin_step(id(2), StaffStep::StartPicking, None, NOON),
        Err(StepRefused::NotFound(id(2)))
    );
    assert!(matches!(
        board.begin_step(order_id, StaffStep::Ready, None, NOON),
        Err(StepRefused::Conflict(_))
    ));
    let Ok(StepStart::Write(started)) =
        board.begin_step(order_id, StaffStep::StartPicking, None, NOON)
    else {
        panic!("start picking refused");
    };
    assert_eq!(started.state, OrderState::PickingStarted);
    assert_eq!(
        board.begin_step(order_id, StaffStep::StartPicking, None, NOON),
        Err(StepRefused::Busy(order_id)),
        "busy until the outcome is recorded"
    );
    board.set_busy(order_id, false);
    board.advance(order_id, started.state, Some(started.clone()));
    assert_eq!(
        board.begin_step(order_id, StaffStep::StartPicking, None, NOON + 1),
        Ok(StepStart::Repeated(started)),
        "a retried step is answered with the status recorded then"
    );
    let sku = list.items_to_pick[0].sku.clone();
    let none_picked = [PickedLine {
        sku: sku.clone(),
        quantity_picked: 0,
    }];
    let Ok(StepStart::Write(picked)) =
        board.begin_step(order_id, StaffStep::Picked, Some(&none_picked), NOON)
    else {
        panic!("picked refused");
    };
    board.set_busy(order_id, false);
    board.advance(order_id, picked.state, Some(picked.clone()));
    assert_eq!(
        board.begin_step(order_id, StaffStep::Picked, Some(&none_picked), NOON + 5),
        Ok(StepStart::Repeated(picked))
    );
    assert!(matches!(
        board.begin_step(order_id, StaffStep::Picked, None, NOON),
        Err(StepRefused::Conflict(message)) if message.contains("other quantities")
    ));
    let too_many = [PickedLine {
        sku,
        quantity_picked: 99,
    }];
    assert!(matches!(
        board.begin_step(order_id, StaffStep::Picked, Some(&too_many), NOON),
        Err(StepRefused::BadLines(_))
    ));
}
