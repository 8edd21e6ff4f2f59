//! The `greenlet` module demos: manual switching with `raw::Greenlet`.
//!
//! 1. test1/test2 print `12 56 34 78`.
//! 2. eat/play pass values back and forth through `switch`.
//!
//! `cargo run --release --example greenlet_switch`

use std::cell::RefCell;
use std::rc::Rc;

use greenhub::raw::Greenlet;

type Slot<V> = Rc<RefCell<Option<Greenlet<V>>>>;

#[derive(clap::Parser)]
#[command(about = "greenlet-module switching: prints 12 56 34 (the 78 never runs).")]
struct Args {}

fn main() {
    let Args {} = <Args as clap::Parser>::parse();
    // from greenlet import greenlet
    // def test1(): print(12); gr2.switch(); print(34)
    // def test2(): print(56); gr1.switch(); print(78)
    // gr1 = greenlet(test1); gr2 = greenlet(test2); gr1.switch(); gr2.switch()
    let gr1: Slot<()> = Rc::default();
    let gr2: Slot<()> = Rc::default();
    let g2 = gr2.clone();
    *gr1.borrow_mut() = Some(Greenlet::new(move |()| {
        println!("12");
        g2.borrow().clone().unwrap().switch(());
        println!("34");
    }));
    let g1 = gr1.clone();
    *gr2.borrow_mut() = Some(Greenlet::new(move |()| {
        println!("56");
        g1.borrow().clone().unwrap().switch(());
        println!("78");
    }));
    let first = gr1.borrow().clone().unwrap();
    first.switch(()); // 12 56 34; test1 finished, so control is back here
    let second = gr2.borrow().clone().unwrap();
    second.switch(()); // test2 resumes after its switch: 78

    // def eat(food): print('eat', food); drink = play_gr.switch('ball'); print('drink', drink); return 'full'
    // def play(toy): print('play with', toy); food = eat_gr.switch('juice'); ...
    let eat_gr: Slot<String> = Rc::default();
    let play_gr: Slot<String> = Rc::default();
    let p = play_gr.clone();
    *eat_gr.borrow_mut() = Some(Greenlet::new(move |food: String| {
        println!("eat {food}");
        let drink = p.borrow().clone().unwrap().switch("ball".into());
        println!("drink {drink}");
        "full".to_string()
    }));
    let e = eat_gr.clone();
    *play_gr.borrow_mut() = Some(Greenlet::new(move |toy: String| {
        println!("play with {toy}");
        let back = e.borrow().clone().unwrap().switch("juice".into());
        println!("play never resumes: {back}");
        back
    }));
    let eat = eat_gr.borrow().clone().unwrap();
    let result = eat.switch("apple".into());
    println!("eat returned {result}");
}
