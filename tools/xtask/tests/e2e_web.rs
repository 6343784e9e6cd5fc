//! The pick-list consumer's live web page, checked in headless Chromium: pick lists produced
//! after the page opened appear on it, with their delivery window, in pick order (earliest
//! window first, lists without one last, then arrival), and a page opened afterwards gets them
//! in the same order from the staff board.

use std::time::{Duration, Instant};

use grocery_events::{Client, Config, PickListDeliveryWindow};
use grocery_store::{Catalog, OrderSimulator, PickListBuilder, PickerRoster};
use xtask::{
    browser::Browser,
    services::{self, Binaries},
};

#[tokio::test(flavor = "multi_thread")]
async fn a_pick_list_produced_after_the_page_opened_appears_on_it() {
    let bins = tokio::task::spawn_blocking(Binaries::build)
        .await
        .unwrap()
        .unwrap();
    let stack = grocery_stack::start().await.unwrap();
    let dir = services::workspace_dir().join(format!("target/e2e/web-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("client.properties");
    std::fs::write(&config_path, stack.client_properties()).unwrap();
    let addr = format!(
        "127.0.0.1:{}",
        services::FreePorts::default().pick().unwrap()
    );
    let mut consumer = services::start(
        "picklist-consumer",
        &bins.picklist_consumer,
        &[
            "--config".into(),
            config_path.display().to_string(),
            "--json".into(),
            "--http".into(),
            addr.clone(),
        ],
        &[("RUST_LOG", "info")],
        &dir.join("services.log"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while services::http_get(&addr, "/health").is_err() {
        assert!(Instant::now() < deadline, "web page never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let url = format!("http://{addr}/");
    let mut browser = tokio::task::spawn_blocking(move || Browser::open(&url))
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while browser.eval("document.readyState").unwrap() != "complete" {
        assert!(Instant::now() < deadline, "page did not load");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = browser.text().unwrap();

    // Now three pick lists are made and produced, in this order: a window at 14:00, none, a
    // window at 12:00 (the same day).
    let catalog = Catalog::builtin();
    let mut simulator = OrderSimulator::new(99, &catalog);
    let builder = PickListBuilder::new(&catalog, PickerRoster::default());
    let noon: i64 = 1_735_732_800_000;
    let hour: i64 = 3_600_000;
    let pick_lists: Vec<_> = [Some(2), None, Some(0)]
        .into_iter()
        .map(|start_hours: Option<i64>| {
            let order = simulator.next_order(0);
            let mut pick_list = builder.build(&order, 0);
            pick_list.delivery_window = start_hours.map(|h| PickListDeliveryWindow {
                start_time: noon + h * hour,
                end_time: noon + (h + 2) * hour,
            });
            pick_list
        })
        .collect();
    for pick_list in &pick_lists {
        assert!(!before.contains(&pick_list.order_id.to_string()));
    }
    let config = Config::from_file(&config_path).unwrap();
    let producer = Client::from_config(config)
        .unwrap()
        .producer()
        .await
        .unwrap();
    for pick_list in &pick_lists {
        producer.send(pick_list).await.unwrap();
    }

    let all_shown = |text: &str| {
        pick_lists
            .iter()
            .all(|p| text.contains(&p.order_id.to_string()))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = browser.text().unwrap();
        if all_shown(&text) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "pick lists never appeared; page shows:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let pick_list = &pick_lists[0];
    assert!(text.contains(&pick_list.assigned_picker), "{text}");
    let first_line = &pick_list.items_to_pick[0];
    assert!(text.contains(&first_line.name), "lines shown: {text}");
    assert!(text.contains("No delivery window"), "{text}");
    assert_eq!(text.matches("Deliver ").count(), 2, "{text}");

    // Pick order: the 12:00 window, the 14:00 window, then the list without one.
    let expected: Vec<String> = [2, 0, 1]
        .iter()
        .map(|&i| pick_lists[i].order_id.to_string())
        .collect();
    let cards =
        "[...document.querySelectorAll('#cards .card')].map(c => c.dataset.orderId).join(',')";
    let shown = browser.eval(cards).unwrap();
    assert_eq!(shown.as_str(), Some(expected.join(",").as_str()), "{text}");

    // A page opened now gets the open lists from the staff board, in the same order.
    let url = format!("http://{addr}/");
    assert_eq!(browser.navigate(&url).unwrap(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = browser.eval(cards).unwrap();
        if shown.as_str().is_some_and(|s| s.split(',').count() == 3) {
            assert_eq!(shown.as_str(), Some(expected.join(",").as_str()));
            break;
        }
        assert!(Instant::now() < deadline, "the reloaded page shows {shown}");
        std::thread::sleep(Duration::from_millis(200));
    }
    consumer.terminate(Duration::from_secs(20)).unwrap();
}
