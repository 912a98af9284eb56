//! Capping the length hints of sequences and maps (a defence against preallocation, see
//! `decode_alloc.rs`) changes no decoded value.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Unit;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Wrapper(Vec<i32>);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f32),
    Pair(u8, String),
    Named { tags: Vec<String>, sizes: BTreeMap<String, Vec<u16>> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Everything {
    unit: Unit,
    wrapper: Wrapper,
    shapes: Vec<Shape>,
    maybe: Option<Vec<(u64, bool)>>,
    nothing: Option<u8>,
    bytes: Vec<u8>,
    text: String,
    map: HashMap<u32, Vec<Vec<char>>>,
    big: (i128, u128),
    units: Vec<()>,
}

#[test]
fn every_kind_of_value_decodes_as_before() {
    let value = Everything {
        unit: Unit,
        wrapper: Wrapper(vec![-1, 0, i32::MAX]),
        shapes: vec![
            Shape::Empty,
            Shape::Circle(1.5),
            Shape::Pair(7, "seven".into()),
            Shape::Named {
                tags: vec!["a".into(), String::new()],
                sizes: BTreeMap::from([("x".into(), vec![1, 2, 3]), ("y".into(), vec![])]),
            },
        ],
        maybe: Some(vec![(u64::MAX, true), (0, false)]),
        nothing: None,
        bytes: (0..=255).collect(),
        text: "héllo".into(),
        map: HashMap::from([(1, vec![vec!['a', 'é'], vec![]]), (2, vec![])]),
        big: (i128::MIN, u128::MAX),
        // Zero-sized elements take no bytes: more of them than the body has bytes still
        // decode (the cap only sizes the first allocation).
        units: vec![(); 1000],
    };
    let bytes = ticksock_protocol::encode_body(&value).expect("encodes");
    assert!(bytes.len() < 1000, "the test needs more unit elements than body bytes");
    let decoded: Everything = ticksock_protocol::decode_body(&bytes).expect("decodes");
    assert_eq!(decoded, value);
}
