#!/usr/bin/env python3
"""Generate data/catalog.csv, the built-in store catalog of grocery-store.

Deterministic and offline: the same script always writes the same file.

Layout of the store, in the order a picker walks it (walk_rank): produce at the
entrance, bakery and deli, the centre aisles A01..A14, then the chilled and
frozen cases along the back wall last, so cold items spend the least time in
the cart.

SKUs are `PRD-ZZNNN`: ZZ is the zone's number in ZONES, NNN the item's position
within its zone (from 001). To keep SKUs stable, only ever append items to the
end of a zone's list; never reorder or delete (retire an item by setting its
stock to 0 in a later edit instead).

Stock levels are derived from a SHA-256 of the SKU, so they are stable too.
About one item in 43 is out of stock and about one in 43 has 1-3 units, so the
stock check has real SHORT and OUT_OF_STOCK cases; a few items are pinned low
on purpose (see PINNED_STOCK).

Usage: python3 scripts/gen_catalog.py  (writes data/catalog.csv at the repo root)
"""

import csv
import hashlib
import os

# (zone code, zone name, typical stock range, [(category, [(name, price_cents), ...]), ...])
ZONES = [
    ("P01", "Produce", (20, 150), [
        ("Fruit", [
            ("Bananas (per lb)", 59),
            ("Organic Bananas (per lb)", 79),
            ("Gala Apples (per lb)", 199),
            ("Honeycrisp Apples (per lb)", 299),
            ("Granny Smith Apples (per lb)", 199),
            ("Navel Oranges (per lb)", 149),
            ("Lemons (each)", 69),
            ("Limes (each)", 39),
            ("Seedless Red Grapes (per lb)", 299),
            ("Strawberries 1 lb", 399),
            ("Blueberries 6 oz", 349),
            ("Raspberries 6 oz", 399),
            ("Hass Avocados (each)", 129),
            ("Cantaloupe (each)", 349),
            ("Seedless Watermelon (each)", 699),
            ("Pineapple (each)", 299),
        ]),
        ("Vegetables", [
            ("Roma Tomatoes (per lb)", 149),
            ("Tomatoes on the Vine (per lb)", 249),
            ("Grape Tomatoes 10 oz", 299),
            ("English Cucumber (each)", 149),
            ("Green Bell Pepper (each)", 99),
            ("Red Bell Pepper (each)", 169),
            ("Yellow Onions 3 lb Bag", 349),
            ("Red Onions (per lb)", 149),
            ("Russet Potatoes 5 lb Bag", 449),
            ("Sweet Potatoes (per lb)", 129),
            ("Garlic Bulbs 3 ct", 199),
            ("Baby Carrots 1 lb", 169),
            ("Celery Hearts 16 oz", 299),
            ("Broccoli Crowns (per lb)", 229),
            ("Cauliflower (each)", 349),
            ("Romaine Hearts 3 ct", 399),
            ("Iceberg Lettuce (each)", 199),
            ("Organic Baby Spinach 5 oz", 399),
            ("Organic Spring Mix 5 oz", 399),
            ("Green Onions (bunch)", 99),
            ("Cilantro (bunch)", 99),
            ("Jalapeno Peppers (per lb)", 149),
            ("White Mushrooms 8 oz", 249),
            ("Zucchini (per lb)", 179),
        ]),
    ]),
    ("B01", "Bakery", (6, 40), [
        ("Bakery", [
            ("Sourdough Round Loaf 24 oz", 499),
            ("French Baguette", 299),
            ("Everything Bagels 6 ct", 449),
            ("Plain Bagels 6 ct", 449),
            ("Butter Croissants 4 ct", 599),
            ("Blueberry Muffins 4 ct", 549),
            ("Glazed Donuts 6 ct", 499),
            ("Chocolate Chip Cookies 12 ct", 499),
            ("Dinner Rolls 12 ct", 399),
            ("Apple Pie 8 in", 899),
            ("Chocolate Layer Cake 7 in", 1499),
            ("Cinnamon Rolls 4 ct", 599),
            ("Multigrain Sandwich Bread 20 oz", 449),
            ("White Sandwich Bread 20 oz", 299),
        ]),
    ]),
    ("D01", "Deli", (5, 35), [
        ("Deli", [
            ("Oven Roasted Turkey Breast (per lb)", 999),
            ("Black Forest Ham (per lb)", 899),
            ("Genoa Salami (per lb)", 1099),
            ("Rotisserie Chicken (whole)", 799),
            ("Sliced Provolone Cheese (per lb)", 799),
            ("Sliced Swiss Cheese (per lb)", 899),
            ("Classic Hummus 10 oz", 449),
            ("Chicken Salad 1 lb", 799),
            ("Potato Salad 1 lb", 499),
            ("Creamy Coleslaw 1 lb", 399),
            ("Fresh Mozzarella Ball 8 oz", 499),
            ("Kalamata Olives 8 oz", 599),
            ("Italian Sub Sandwich", 799),
            ("California Roll Sushi 8 pc", 799),
            ("Brie Cheese Wedge 7 oz", 699),
        ]),
    ]),
    ("A01", "Cereal & Breakfast", (10, 80), [
        ("Cereal", [
            ("Honey Nut Toasted Oat Cereal 15.4 oz", 499),
            ("Frosted Corn Flakes 13.5 oz", 429),
            ("Raisin Bran Cereal 16.6 oz", 459),
            ("Crispy Rice Cereal 12 oz", 399),
            ("Old Fashioned Rolled Oats 42 oz", 599),
            ("Instant Oatmeal Variety Pack 10 ct", 399),
            ("Honey Almond Granola 12 oz", 499),
            ("Chewy Granola Bars 8 ct", 399),
        ]),
        ("Breakfast", [
            ("Buttermilk Pancake Mix 32 oz", 399),
            ("Pure Maple Syrup 12.5 oz", 899),
            ("Original Pancake Syrup 24 oz", 399),
            ("Strawberry Toaster Pastries 8 ct", 349),
        ]),
        ("Spreads", [
            ("Creamy Peanut Butter 16 oz", 329),
            ("Crunchy Peanut Butter 16 oz", 329),
            ("Almond Butter 12 oz", 899),
            ("Hazelnut Cocoa Spread 13 oz", 499),
            ("Strawberry Preserves 18 oz", 399),
            ("Grape Jelly 30 oz", 349),
            ("Clover Honey 12 oz", 549),
        ]),
    ]),
    ("A02", "Coffee & Tea", (8, 60), [
        ("Coffee", [
            ("Medium Roast Ground Coffee 12 oz", 899),
            ("Dark Roast Whole Bean Coffee 12 oz", 1099),
            ("Colombian Ground Coffee 24 oz", 1399),
            ("Decaf Ground Coffee 12 oz", 899),
            ("Medium Roast Coffee Pods 24 ct", 1699),
            ("Instant Coffee 8 oz", 799),
            ("Cold Brew Coffee Concentrate 32 oz", 799),
            ("Coffee Filters #4 100 ct", 349),
            ("Powdered Coffee Creamer 16 oz", 449),
        ]),
        ("Tea & Cocoa", [
            ("Green Tea Bags 40 ct", 399),
            ("English Breakfast Tea 20 ct", 349),
            ("Chamomile Herbal Tea 20 ct", 349),
            ("Black Tea Bags 100 ct", 549),
            ("Hot Cocoa Mix 8 ct", 349),
        ]),
    ]),
    ("A03", "Canned Goods & Soup", (15, 120), [
        ("Soup & Broth", [
            ("Chicken Noodle Soup 10.75 oz", 149),
            ("Tomato Soup 10.75 oz", 129),
            ("Cream of Mushroom Soup 10.5 oz", 149),
            ("Chicken Broth 32 oz", 299),
            ("Vegetable Broth 32 oz", 299),
            ("Hearty Beef Stew 20 oz", 379),
            ("Chili with Beans 15 oz", 249),
        ]),
        ("Canned Beans & Vegetables", [
            ("Black Beans 15 oz", 109),
            ("Dark Red Kidney Beans 15.5 oz", 109),
            ("Chickpeas 15.5 oz", 119),
            ("Refried Beans 16 oz", 149),
            ("Cut Green Beans 14.5 oz", 109),
            ("Whole Kernel Sweet Corn 15.25 oz", 109),
            ("Sweet Peas 15 oz", 109),
            ("Diced Tomatoes 14.5 oz", 129),
            ("Crushed Tomatoes 28 oz", 219),
            ("Tomato Paste 6 oz", 99),
        ]),
        ("Canned Fish & Fruit", [
            ("Chunk Light Tuna in Water 5 oz", 129),
            ("Solid White Albacore Tuna 5 oz", 229),
            ("Chunk Chicken Breast 12.5 oz", 449),
            ("Pineapple Chunks 20 oz", 199),
            ("Mandarin Oranges 11 oz", 169),
            ("Sliced Peaches 15.25 oz", 179),
        ]),
    ]),
    ("A04", "Pasta, Rice & Sauces", (15, 100), [
        ("Pasta", [
            ("Spaghetti 16 oz", 149),
            ("Penne Rigate 16 oz", 149),
            ("Elbow Macaroni 16 oz", 149),
            ("Rotini 16 oz", 149),
            ("Fettuccine 16 oz", 169),
            ("Lasagna Noodles 16 oz", 219),
            ("Whole Wheat Spaghetti 13.25 oz", 199),
            ("Wide Egg Noodles 12 oz", 249),
            ("Macaroni & Cheese Dinner 7.25 oz", 129),
        ]),
        ("Pasta Sauce", [
            ("Marinara Sauce 24 oz", 349),
            ("Tomato Basil Pasta Sauce 24 oz", 349),
            ("Alfredo Sauce 15 oz", 379),
            ("Basil Pesto 6.7 oz", 549),
        ]),
        ("Rice & Grains", [
            ("Long Grain White Rice 5 lb", 599),
            ("Jasmine Rice 2 lb", 449),
            ("Basmati Rice 2 lb", 549),
            ("Brown Rice 2 lb", 299),
            ("Quinoa 16 oz", 499),
            ("Couscous 10 oz", 299),
        ]),
    ]),
    ("A05", "International", (10, 70), [
        ("Mexican", [
            ("Flour Tortillas 10 ct", 349),
            ("Corn Tortillas 30 ct", 299),
            ("Crunchy Taco Shells 12 ct", 249),
            ("Taco Seasoning Mix 1 oz", 129),
            ("Medium Chunky Salsa 16 oz", 349),
            ("Salsa Verde 16 oz", 349),
            ("Sliced Jalapenos 12 oz", 229),
            ("Red Enchilada Sauce 10 oz", 199),
        ]),
        ("Asian", [
            ("Soy Sauce 15 oz", 349),
            ("Teriyaki Sauce 10 oz", 349),
            ("Sriracha Hot Chili Sauce 17 oz", 449),
            ("Hoisin Sauce 8.5 oz", 299),
            ("Coconut Milk 13.5 oz", 229),
            ("Red Curry Paste 4 oz", 349),
            ("Chicken Flavor Ramen Noodles 3 oz", 39),
            ("Rice Noodles 14 oz", 349),
            ("Toasted Sesame Oil 5 oz", 449),
        ]),
    ]),
    ("A06", "Baking & Spices", (10, 80), [
        ("Baking", [
            ("All-Purpose Flour 5 lb", 399),
            ("Bread Flour 5 lb", 549),
            ("Granulated Sugar 4 lb", 399),
            ("Light Brown Sugar 2 lb", 299),
            ("Powdered Sugar 2 lb", 279),
            ("Baking Soda 1 lb", 129),
            ("Baking Powder 8.1 oz", 299),
            ("Pure Vanilla Extract 2 oz", 899),
            ("Semi-Sweet Chocolate Chips 12 oz", 399),
            ("Active Dry Yeast 3 ct", 199),
            ("Cornstarch 16 oz", 229),
            ("Yellow Cake Mix 15.25 oz", 199),
            ("Fudge Brownie Mix 18 oz", 249),
            ("Milk Chocolate Frosting 16 oz", 229),
        ]),
        ("Oils", [
            ("Canola Oil 48 oz", 549),
            ("Extra Virgin Olive Oil 16.9 oz", 899),
            ("Original Cooking Spray 6 oz", 349),
        ]),
        ("Spices", [
            ("Iodized Salt 26 oz", 129),
            ("Kosher Salt 3 lb", 449),
            ("Ground Black Pepper 3 oz", 399),
            ("Ground Cinnamon 2.37 oz", 349),
            ("Garlic Powder 3.12 oz", 349),
            ("Chili Powder 2.5 oz", 279),
            ("Italian Seasoning 0.87 oz", 299),
            ("Smoked Paprika 2.12 oz", 399),
        ]),
    ]),
    ("A07", "Condiments", (10, 80), [
        ("Condiments", [
            ("Tomato Ketchup 32 oz", 349),
            ("Yellow Mustard 14 oz", 199),
            ("Dijon Mustard 12 oz", 399),
            ("Real Mayonnaise 30 oz", 599),
            ("Kosher Dill Pickle Spears 24 oz", 399),
            ("Sweet Relish 10 oz", 229),
            ("Original BBQ Sauce 18 oz", 279),
            ("Cayenne Pepper Hot Sauce 12 oz", 299),
            ("Worcestershire Sauce 10 oz", 329),
        ]),
        ("Dressings & Vinegar", [
            ("Ranch Dressing 16 oz", 349),
            ("Zesty Italian Dressing 16 oz", 299),
            ("Caesar Dressing 16 oz", 349),
            ("Balsamic Vinaigrette 16 oz", 349),
            ("Apple Cider Vinegar 32 oz", 299),
            ("Distilled White Vinegar 1 gal", 349),
        ]),
    ]),
    ("A08", "Snacks & Chips", (10, 90), [
        ("Chips", [
            ("Classic Potato Chips 8 oz", 449),
            ("Kettle Cooked Sea Salt Chips 8 oz", 449),
            ("Sour Cream & Onion Potato Chips 8 oz", 449),
            ("Restaurant Style Tortilla Chips 13 oz", 449),
            ("Nacho Cheese Tortilla Chips 9.25 oz", 499),
            ("Crunchy Cheese Puffs 8 oz", 399),
            ("Veggie Straws 7 oz", 449),
            ("Sea Salt Pita Chips 7.33 oz", 449),
        ]),
        ("Snacks & Nuts", [
            ("Mini Pretzel Twists 16 oz", 349),
            ("Butter Microwave Popcorn 3 ct", 399),
            ("Lightly Salted Dry Roasted Peanuts 16 oz", 399),
            ("Deluxe Mixed Nuts 15 oz", 899),
            ("Whole Natural Almonds 16 oz", 799),
            ("Trail Mix 26 oz", 899),
            ("Original Beef Jerky 2.85 oz", 699),
            ("Lightly Salted Rice Cakes 4.47 oz", 299),
            ("Mixed Fruit Snacks 10 ct", 349),
            ("Salsa con Queso Dip 15 oz", 429),
        ]),
    ]),
    ("A09", "Cookies & Crackers", (10, 70), [
        ("Cookies", [
            ("Chocolate Sandwich Cookies 14.3 oz", 449),
            ("Chewy Chocolate Chip Cookies 13 oz", 449),
            ("Oatmeal Raisin Cookies 18 oz", 399),
            ("Vanilla Wafers 11 oz", 349),
            ("Fig Bars 10 oz", 349),
            ("Frosted Animal Crackers 13 oz", 349),
        ]),
        ("Crackers", [
            ("Honey Graham Crackers 14.4 oz", 399),
            ("Saltine Crackers 16 oz", 329),
            ("Round Butter Crackers 13.7 oz", 399),
            ("Cheddar Cheese Crackers 7 oz", 349),
            ("Woven Wheat Crackers 9 oz", 399),
            ("Water Crackers 4.4 oz", 299),
        ]),
    ]),
    ("A10", "Beverages", (12, 100), [
        ("Water & Soda", [
            ("Spring Water 24 pk 16.9 oz", 499),
            ("Lime Sparkling Water 12 pk 12 oz", 549),
            ("Cola 12 pk 12 oz Cans", 799),
            ("Diet Cola 12 pk 12 oz Cans", 799),
            ("Lemon-Lime Soda 2 L", 249),
            ("Ginger Ale 12 pk 12 oz Cans", 699),
            ("Root Beer 2 L", 249),
            ("Club Soda 1 L", 199),
            ("Tonic Water 1 L", 199),
            ("Distilled Water 1 gal", 149),
        ]),
        ("Juice & Drinks", [
            ("100% Apple Juice 64 oz", 349),
            ("Cranberry Juice Cocktail 64 oz", 399),
            ("100% Grape Juice 64 oz", 399),
            ("Tomato Juice 46 oz", 399),
            ("Fruit Punch Sports Drink 28 oz", 199),
            ("Sports Drink Variety 12 pk 20 oz", 1399),
            ("Energy Drink 16 oz Can", 299),
            ("Pure Coconut Water 33.8 oz", 499),
            ("Powdered Lemonade Drink Mix 19 oz", 399),
        ]),
    ]),
    ("A11", "Household & Paper", (6, 50), [
        ("Laundry & Cleaning", [
            ("Liquid Laundry Detergent 92 oz", 1299),
            ("Laundry Detergent Pods 42 ct", 1399),
            ("Fabric Softener 64 oz", 799),
            ("Dryer Sheets 120 ct", 799),
            ("Original Dish Soap 19.4 oz", 349),
            ("Dishwasher Detergent Pods 32 ct", 1099),
            ("All-Purpose Cleaner Spray 32 oz", 449),
            ("Glass Cleaner 23 oz", 399),
            ("Disinfecting Wipes 75 ct", 649),
            ("Regular Bleach 121 oz", 599),
            ("Non-Scratch Sponges 6 ct", 549),
        ]),
        ("Kitchen Supplies", [
            ("Tall Kitchen Trash Bags 13 gal 40 ct", 1199),
            ("Aluminum Foil 75 sq ft", 549),
            ("Plastic Wrap 200 sq ft", 399),
            ("Gallon Freezer Bags 28 ct", 499),
            ("Sandwich Bags 100 ct", 399),
            ("AA Alkaline Batteries 8 pk", 999),
        ]),
        ("Paper Goods", [
            ("Paper Towels 6 Double Rolls", 1199),
            ("Bath Tissue 12 Mega Rolls", 1599),
            ("Facial Tissues 3 pk", 649),
            ("Paper Plates 9 in 100 ct", 799),
            ("Paper Napkins 250 ct", 449),
            ("Plastic Party Cups 18 oz 50 ct", 599),
        ]),
    ]),
    ("A12", "Health & Beauty", (5, 40), [
        ("Personal Care", [
            ("Fluoride Toothpaste 4.8 oz", 349),
            ("Soft Toothbrushes 2 pk", 399),
            ("Mint Mouthwash 1 L", 599),
            ("Mint Dental Floss 50 yd", 349),
            ("Daily Moisture Shampoo 12.6 oz", 599),
            ("Daily Moisture Conditioner 12.6 oz", 599),
            ("Moisturizing Body Wash 18 oz", 699),
            ("Bar Soap 8 ct", 799),
            ("Antiperspirant Deodorant 2.6 oz", 549),
            ("Hand Soap Refill 50 oz", 699),
            ("Cotton Swabs 500 ct", 449),
            ("Disposable Razors 4 ct", 749),
        ]),
        ("Pharmacy", [
            ("Ibuprofen Tablets 200 mg 100 ct", 799),
            ("Acetaminophen Extra Strength 100 ct", 899),
            ("Assorted Adhesive Bandages 60 ct", 449),
            ("Daily Multivitamin 100 ct", 1099),
            ("Sunscreen Lotion SPF 50 8 oz", 999),
        ]),
    ]),
    ("A13", "Baby & Pet", (4, 30), [
        ("Baby", [
            ("Diapers Size 3 84 ct", 2999),
            ("Unscented Baby Wipes 216 ct", 899),
            ("Infant Formula Powder 12.4 oz", 2899),
            ("Apple Banana Baby Food Pouch 4 oz", 179),
            ("Baby Oatmeal Cereal 8 oz", 349),
            ("Tear-Free Baby Shampoo 13.6 oz", 599),
        ]),
        ("Pet", [
            ("Chicken & Rice Dry Dog Food 15 lb", 2499),
            ("Beef Stew Wet Dog Food 13.2 oz", 199),
            ("Dog Biscuits 24 oz", 599),
            ("Indoor Dry Cat Food 7 lb", 1499),
            ("Pate Variety Wet Cat Food 12 pk", 999),
            ("Clumping Cat Litter 20 lb", 1499),
        ]),
    ]),
    ("M01", "Meat & Seafood", (5, 45), [
        ("Meat", [
            ("Boneless Skinless Chicken Breasts (per lb)", 399),
            ("Bone-In Chicken Thighs (per lb)", 199),
            ("Chicken Drumsticks (per lb)", 179),
            ("Whole Fryer Chicken (per lb)", 149),
            ("Chicken Wings Party Pack (per lb)", 399),
            ("80/20 Ground Beef 1 lb", 549),
            ("93/7 Lean Ground Beef 1 lb", 749),
            ("Ribeye Steak (per lb)", 1499),
            ("New York Strip Steak (per lb)", 1399),
            ("Top Sirloin Steak (per lb)", 999),
            ("Beef Chuck Roast (per lb)", 699),
            ("Boneless Pork Chops (per lb)", 449),
            ("Pork Tenderloin (per lb)", 499),
            ("Baby Back Ribs (per lb)", 599),
            ("Hardwood Smoked Bacon 16 oz", 699),
            ("Breakfast Sausage Links 12 oz", 449),
            ("Hot Italian Sausage 19 oz", 599),
            ("Beef Hot Dogs 8 ct", 549),
            ("93/7 Ground Turkey 1 lb", 549),
        ]),
        ("Seafood", [
            ("Atlantic Salmon Fillet (per lb)", 1099),
            ("Raw Jumbo Shrimp 16-20 ct (per lb)", 1299),
            ("Tilapia Fillets (per lb)", 799),
            ("Cod Fillets (per lb)", 1199),
        ]),
    ]),
    ("C01", "Dairy & Eggs", (10, 90), [
        ("Milk & Cream", [
            ("Whole Milk 1 gal", 399),
            ("2% Reduced Fat Milk 1 gal", 389),
            ("1% Low Fat Milk Half Gallon", 269),
            ("Fat Free Skim Milk Half Gallon", 269),
            ("Organic Whole Milk Half Gallon", 549),
            ("Lactose-Free 2% Milk Half Gallon", 449),
            ("Unsweetened Almond Milk Half Gallon", 349),
            ("Original Oat Milk Half Gallon", 499),
            ("Half & Half 1 qt", 349),
            ("Heavy Whipping Cream 1 pt", 449),
            ("French Vanilla Coffee Creamer 32 oz", 499),
        ]),
        ("Eggs & Butter", [
            ("Large White Eggs 12 ct", 349),
            ("Large White Eggs 18 ct", 499),
            ("Cage-Free Large Brown Eggs 12 ct", 499),
            ("Salted Butter 1 lb", 549),
            ("Unsalted Butter 1 lb", 549),
        ]),
        ("Cheese", [
            ("Sharp Cheddar Cheese Block 8 oz", 329),
            ("Shredded Mozzarella 8 oz", 329),
            ("Shredded Mexican Blend Cheese 8 oz", 329),
            ("American Cheese Singles 16 ct", 399),
            ("Grated Parmesan Cheese 8 oz", 499),
            ("Cream Cheese 8 oz", 249),
        ]),
        ("Yogurt & Cultured", [
            ("Sour Cream 16 oz", 249),
            ("Small Curd Cottage Cheese 16 oz", 349),
            ("Plain Greek Yogurt 32 oz", 599),
            ("Vanilla Lowfat Yogurt 32 oz", 349),
            ("Strawberry Yogurt Cup 6 oz", 99),
            ("French Onion Dip 16 oz", 299),
        ]),
        ("Refrigerated", [
            ("No Pulp Orange Juice 52 oz", 449),
            ("Old Fashioned Lemonade 52 oz", 299),
            ("Buttermilk Biscuits 8 ct", 249),
            ("Extra Creamy Whipped Cream 13 oz", 399),
        ]),
    ]),
    ("F01", "Frozen", (8, 60), [
        ("Frozen Meals", [
            ("Cheese Pizza 12 in", 549),
            ("Pepperoni Pizza 12 in", 599),
            ("Breaded Chicken Nuggets 32 oz", 899),
            ("Fish Sticks 24.5 oz", 799),
            ("Italian Style Meatballs 26 oz", 799),
            ("Bean & Cheese Burritos 8 ct", 599),
            ("Family Size Meat Lasagna 38 oz", 1199),
            ("Chicken Alfredo Bowl 11.5 oz", 399),
            ("Chicken Pot Stickers 24 oz", 899),
        ]),
        ("Frozen Vegetables & Fruit", [
            ("Straight Cut French Fries 32 oz", 349),
            ("Crispy Tater Tots 32 oz", 399),
            ("Frozen Broccoli Florets 12 oz", 199),
            ("Frozen Mixed Vegetables 16 oz", 199),
            ("Frozen Sweet Corn 16 oz", 199),
            ("Frozen Sweet Peas 16 oz", 199),
            ("Frozen Triple Berry Blend 32 oz", 899),
            ("Frozen Whole Strawberries 16 oz", 399),
        ]),
        ("Frozen Breakfast", [
            ("Homestyle Waffles 10 ct", 349),
            ("Sausage Egg & Cheese Breakfast Sandwiches 4 ct", 799),
        ]),
        ("Ice Cream & Desserts", [
            ("Vanilla Ice Cream 48 oz", 499),
            ("Chocolate Ice Cream 48 oz", 499),
            ("Cookies & Cream Ice Cream 1 pt", 549),
            ("Vanilla Ice Cream Sandwiches 12 ct", 599),
            ("Strawberry Fruit Bars 6 ct", 499),
            ("Deep Dish Pie Crusts 2 ct", 399),
            ("Party Ice 7 lb Bag", 299),
        ]),
    ]),
]

# Items kept deliberately low or empty regardless of the hash (name -> stock).
PINNED_STOCK = {
    "Infant Formula Powder 12.4 oz": 2,
    "Large White Eggs 12 ct": 3,
    "Ribeye Steak (per lb)": 0,
    "Raspberries 6 oz": 1,
    "Party Ice 7 lb Bag": 0,
}

SHELVES_PER_BAY = 4
HEADER = ["sku", "name", "category", "unit_price_cents", "aisle", "walk_rank", "location", "stock"]


def stock_for(sku, name, low, high):
    """Stable stock level: pinned, else derived from a SHA-256 of the SKU."""
    if name in PINNED_STOCK:
        return PINNED_STOCK[name]
    h = int.from_bytes(hashlib.sha256(sku.encode()).digest()[:8], "big")
    bucket = h % 43
    if bucket == 0:
        return 0
    if bucket == 1:
        return 1 + (h // 43) % 3
    return low + (h // 43) % (high - low + 1)


def rows():
    """All catalog rows, zone by zone in walking order."""
    seen = set()
    for zone_no, (code, zone_name, (low, high), groups) in enumerate(ZONES, start=1):
        position = 0
        for category, items in groups:
            for name, price in items:
                assert name not in seen, f"duplicate item name {name!r}"
                assert price > 0
                seen.add(name)
                bay = position // SHELVES_PER_BAY + 1
                shelf = position % SHELVES_PER_BAY + 1
                position += 1
                sku = f"PRD-{zone_no:02d}{position:03d}"
                yield [
                    sku,
                    name,
                    category,
                    price,
                    f"{code} {zone_name}",
                    zone_no,
                    f"{code}-B{bay:02d}-S{shelf}",
                    stock_for(sku, name, low, high),
                ]
    missing = set(PINNED_STOCK) - seen
    assert not missing, f"pinned items not in catalog: {missing}"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "data", "catalog.csv")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    all_rows = list(rows())
    assert 300 <= len(all_rows) <= 400, len(all_rows)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(all_rows)
    zero = sum(1 for r in all_rows if r[-1] == 0)
    low = sum(1 for r in all_rows if 0 < r[-1] <= 3)
    print(f"wrote {out}: {len(all_rows)} items in {len(ZONES)} zones, {zero} out of stock, {low} with 1-3 units")


if __name__ == "__main__":
    main()
