//! Pages driven in headless Chromium as a person would: open the link, read, press the button.

use crate::http::{send, state_of, unsubscribe_path};
use crate::support::browser::Browser;
use crate::support::daemon::Running;
use crate::support::World;

/// The width and height in a PNG's header.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn a_reader_on_a_phone_unsubscribes_with_the_pages_button() {
    let w = World::new();
    send(&w, "2021-07");
    // The link in Ana's message, on this daemon instead of the public host.
    let path = unsubscribe_path(&w, "2021-07", "ana@example.org");
    let d = Running::start(&w, &[]);
    let link = format!("http://{}{path}", d.addr);
    let b = Browser::phone(390);

    // Opening the link asks first, and changes nothing.
    b.open(&link);
    let page = b.wait_for_text("Unsubscribe from BRIEF?");
    assert!(page.contains("Nothing changes until you do."), "{page}");
    assert_eq!(state_of(&w, "ana@example.org"), "active");
    let shot = b.screenshot();
    assert_eq!(png_size(&shot).0, 390, "the phone's width");
    // To look at the page: BRIEF_SCREENSHOTS=/some/dir cargo test browser
    if let Some(dir) = std::env::var_os("BRIEF_SCREENSHOTS") {
        let file = std::path::Path::new(&dir).join("unsubscribe-confirm-390.png");
        std::fs::write(&file, &shot).unwrap();
    }

    // The button unsubscribes her, on the same address (no redirect), and only her.
    b.click("Unsubscribe");
    let done = b.wait_for_text("You are unsubscribed");
    assert!(
        done.contains("This address will receive no more BRIEF."),
        "{done}"
    );
    assert_eq!(b.url(), link);
    assert_eq!(state_of(&w, "ana@example.org"), "unsubscribed");
    assert_eq!(state_of(&w, "bob@example.org"), "active");

    drop(b);
    assert_eq!(d.stop().status.code(), Some(0));
}

/// The harness finds fields as a person names them: by a label that points at the field, by a
/// label around it, or by its name; and quotes in a label do not break the lookup.
#[test]
fn the_browser_fills_fields_by_label_or_name() {
    let page = "<!doctype html><title>form</title>\
        <label for=e>Your email</label><input id=e name=email>\
        <label>Name <input name=n></label>\
        <label for=q>Say \"hi\" o'clock</label><input id=q>\
        <textarea name=note>old</textarea>";
    let b = Browser::start();
    b.open(&format!("data:text/html,{}", page.replace('#', "%23")));
    b.fill("Your email", "ana@example.org");
    b.fill("Name", "Ana García");
    b.fill("Say \"hi\" o'clock", "hello");
    b.fill("note", "new");
    assert_eq!(b.value("email"), "ana@example.org");
    assert_eq!(b.value("n"), "Ana García");
    assert_eq!(b.value("Say \"hi\" o'clock"), "hello");
    assert_eq!(b.value("note"), "new");
    assert!(b.text().contains("Your email"));
}
