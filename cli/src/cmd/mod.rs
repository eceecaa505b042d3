pub mod bench;
pub mod info;
pub mod sample;
pub mod verify;
