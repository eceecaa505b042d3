//! Opening the backend never panics: on a machine without a GPU it reports `Unavailable`.

use flashsampling_core::Error;

#[test]
fn open_reports_instead_of_panicking() {
    match flashsampling_cuda::open(0) {
        Ok(b) => eprintln!("opened: {:?}", b.info().devices.first().map(|d| d.name.clone())),
        Err(Error::Unavailable { reason, .. }) => eprintln!("unavailable: {reason}"),
        Err(e) => panic!("unexpected error: {e}"),
    }
}
