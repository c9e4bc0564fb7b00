pub mod app;
pub mod detail;
pub mod help;
pub mod map_view;
pub mod queue;
pub mod topbar;
