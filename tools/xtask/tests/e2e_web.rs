//! The pick-list consumer's live web page, checked in headless Chromium: a pick list produced
//! after the page opened appears on it.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use grocery_events::{Codec, Config, Producer};
use grocery_store::{Catalog, OrderSimulator, PickListBuilder, PickerRoster};
use local_stack::Stack;
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
    let stack = Stack::start().await.unwrap();
    let dir = services::workspace_dir().join(format!("target/e2e/web-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("client.properties");
    std::fs::write(&config_path, stack.client_properties()).unwrap();
    let addr = format!("127.0.0.1:{}", services::free_port().unwrap());
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

    // Now a pick list is made and produced.
    let catalog = Catalog::builtin();
    let order = OrderSimulator::new(99, &catalog).next_order(0);
    let pick_list = PickListBuilder::new(&catalog, PickerRoster::default()).build(&order, 0);
    assert!(!before.contains(&order.order_id.to_string()));
    let config = Config::from_file(&config_path).unwrap();
    let producer = Producer::new(&config, Arc::new(Codec::from_config(&config).unwrap()))
        .await
        .unwrap();
    producer.send(&pick_list).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = browser.text().unwrap();
        if text.contains(&order.order_id.to_string()) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "pick list never appeared; page shows:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(text.contains(&pick_list.assigned_picker), "{text}");
    let first_line = &pick_list.items_to_pick[0];
    assert!(text.contains(&first_line.name), "lines shown: {text}");
    consumer.terminate(Duration::from_secs(20)).unwrap();
}
