//! Prints a few simulated orders' pick lists as staff would see them.
//!
//! `cargo run -p grocery-store --example show_picklist -- [SEED] [--json]`

use grocery_store::{
    Catalog, OrderSimulator, PickListBuilder, PickerRoster, render_text_with_shelves, to_json,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let seed = args.iter().find_map(|a| a.parse().ok()).unwrap_or(42);
    let catalog = Catalog::builtin();
    let builder = PickListBuilder::new(&catalog, PickerRoster::default());
    let mut simulator = OrderSimulator::new(seed, &catalog);
    for i in 0..3 {
        let order = simulator.next_order(1_735_732_800_000 + i * 60_000);
        let pick_list = builder.build(&order, order.order_time + 1_500);
        if json {
            println!("{}", to_json(&pick_list));
        } else {
            println!("{}", render_text_with_shelves(&pick_list, &catalog));
        }
    }
}
