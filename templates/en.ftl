# The words around the content in English: a Project Fluent catalogue (https://projectfluent.org).
# Staff may change them without touching Rust; a catalogue for another language (es.ftl) has the
# same messages. Every message may use { $kicker }, { $name } and { $organization }, the
# newsletter's words in this language (`[newsletter]`, `[newsletter.LANG]`).

## The language itself

# Its own name, in the links between languages ("English | Español").
language-name = English
# The link in every issue that moves a reader to this language.
read-in-language = Read in English

## Every issue

# The link to the web version, at the top of every message.
view-in-browser = View in browser
# The text of each entry's link.
learn-more = Learn more
# What follows it, lighter, so each link says where it leads even read out of context (a list of
# links, a screen reader).
learn-more-about = about { $title }
# After an entry's date, for entries from a feed with a label.
via = via { $source }
# Why the reader gets this message (required by anti-spam law).
why = You are receiving { $kicker } because you subscribed to the monthly newsletter of the { $organization }.
# The unsubscribe link's text.
unsubscribe = Unsubscribe
# Shown after the unsubscribe link.
unsubscribe-note = One click, no login.
# The hidden preview line most mail clients show next to the subject, for every issue unless its
# issue.toml sets `preheader`; empty: the intro, cut between words.
preheader = { "" }
# The web version shows this where a message has its unsubscribe link.
archive-note = This is the web version of { $kicker }, the monthly newsletter of the { $organization }.

## The sign-up form (`GET /subscribe`, `brief subscribe-form`)

form-email = Email address
form-name = Name (optional)
form-language = Language
# Hidden from people; bots fill it in.
form-honeypot = Leave this field empty
# The consent sentence.
consent = I agree to receive { $kicker }, the monthly newsletter of the { $organization }, by email. I can leave at any time with the link in every message.
form-subscribe = Subscribe

## The message that asks a new reader to confirm

confirm-subject = Confirm your subscription to { $kicker }
confirm-text = Someone, probably you, asked to receive { $kicker }, the monthly newsletter of the { $organization }, at this address. Confirm with the button below. If it was not you, ignore this message: nothing will be sent.
confirm-button = Confirm subscription
# Before the link in the plain-text part.
confirm-link-label = Confirm your subscription:
# Before the link spelled out under the button.
or-open = Or open this address:

## Pages

# Every page's title: the page's own, then the newsletter.
page-title = { $title } – { $kicker }
# The links to the same page in the other languages.
languages-nav = Languages
subscribe-title = Subscribe
subscribe-heading = Subscribe to { $kicker }
subscribe-lead = { $name }, the monthly newsletter of the { $organization }, in your inbox once a month.
request-too-large = The request is too large.
check-address = Please check the address: { $problem }.
address-empty = it is empty
address-control = it has a control character (such as NUL or a line break)
address-non-ascii = it has non-ASCII characters, which are not supported yet
address-syntax = it is not a valid email address
address-ip = it has an IP address for its domain; use a domain name like example.org
address-no-dot = it has no dot in its domain; use a full domain name like example.org, not a local name like localhost
too-many-heading = Too many requests
too-many-text = Too many sign-up requests came from your network. Please try again in an hour.
check-inbox-title = Check your inbox
check-inbox-text = If this address is not subscribed yet, a message with a confirmation link is on its way to it. Open the link within { $ttl } to start receiving { $kicker }.
link-expired = This confirmation link has expired. Ask again below, and open the new link within its time.
link-invalid = This confirmation link is not valid (it may have been cut short by your mail program). Ask again below.
link-outdated = This confirmation link is older than the last change to this address's subscription, so it changes nothing. To subscribe again, ask below: a new link will be sent.
confirm-heading = Confirm your subscription to { $kicker }
confirm-lead = Press the button to start receiving the newsletter. Nothing changes until you do.
subscribed-title = Subscribed
subscribed-heading = You're subscribed
subscribed-text = Thank you. { $kicker } will come to this address once a month.
see-archive = Past issues are in the archive
not-found-title = Not found
not-found-text = There is nothing here.
error-title = Error
error-heading = Something went wrong
error-text = Please try again in a few minutes.
archive-title = Archive
archive-empty = No issue has been sent yet.
preview-expired-title = Preview expired
preview-expired-heading = This preview has expired
preview-expired-text = A test copy's “View in browser” link works for { $days } days. Staff can see every issue in the console.
open-console = Open the console
preview-problems-title = Preview
preview-problems-heading = Issue { $issue } cannot be shown now
preview-problems-text = { $count ->
    [one] Its folder has a problem since the test copy was sent. Run brief check, or open the issue in the console.
   *[other] Its folder has { $count } problems since the test copy was sent. Run brief check, or open the issue in the console.
}
unsubscribe-title = Unsubscribe
unsubscribe-heading = Unsubscribe from { $kicker }?
unsubscribe-lead = Press the button to stop receiving { $kicker }, the monthly newsletter of the { $organization }. Nothing changes until you do.
unsubscribe-button = Unsubscribe
unsubscribed-title = Unsubscribed
unsubscribed-heading = You are unsubscribed
unsubscribed-text = This address will receive no more { $kicker }. If that was a mistake, write to
# The language switch (`/language/LANG/TOKEN`), in the language it switches to.
switch-title = Language
switch-heading = Read { $kicker } in English?
switch-lead = Press the button to receive { $kicker } in English from the next issue on. Nothing changes until you do.
switch-button = Read in English
switched-heading = { $kicker } will come in English
switched-text = From the next issue on, this address receives { $kicker } in English.

## Durations ("within 7 days")

duration-days = { $count ->
    [one] one day
   *[other] { $count } days
}
duration-hours = { $count ->
    [one] one hour
   *[other] { $count } hours
}
duration-minutes = { $count ->
    [one] one minute
   *[other] { $count } minutes
}
