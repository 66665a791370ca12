//! Pages driven in headless Chromium as a person would: open the link, read, press the button.

use crate::support::browser::Browser;

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
