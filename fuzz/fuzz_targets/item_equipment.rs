//! Fuzzes the item-equipment model: any bytes are either a parse error or a model whose accessors do not
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maple_gateway_fuzz::expectation::ItemEquipment;

fuzz_target!(|data: &[u8]| {
    let _ = ItemEquipment::from_json(data);
    if let Ok(eq) = ItemEquipment::from_json_for_engine(data) {
        let _ = eq.is_empty();
        for n in 0..=4 {
            for item in eq.preset(n).unwrap_or_default() {
                let _ = item.base_level();
                let _ = item.potential_lines();
                let _ = item.additional_lines();
            }
        }
    }
});
