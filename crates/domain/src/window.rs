/// An alert's window as people read it: `1 h`, `24 h`, `90 min`. The one
/// wording of the dashboard and of the messages the alerts send.
pub fn window_label(secs: i32) -> String {
    if secs % 3600 == 0 { format!("{} h", secs / 3600) } else { format!("{} min", secs / 60) }
}
