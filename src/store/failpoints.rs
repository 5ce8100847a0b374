//! Test-only failpoints: make a commit fail at one [`CommitStep`], standing in for a crash
//! there. Compiled in only with the `failpoints` cargo feature (the test script turns it
//! on); without it [`Failpoints`] is empty and checking it does nothing.

use super::{CommitStep, StoreError};

#[derive(Debug, Clone, Default)]
pub struct Failpoints {
    #[cfg(feature = "failpoints")]
    armed: std::sync::Arc<std::sync::Mutex<Option<Armed>>>,
}

#[cfg(feature = "failpoints")]
#[derive(Debug, Clone, Copy)]
struct Armed {
    step: CommitStep,
    /// How many times the step passes before it fails.
    passes_left: usize,
}

impl Failpoints {
    /// Makes the commit fail the next time (after `passes` more passes) it reaches `step`.
    /// It fires once, then disarms itself.
    #[cfg(feature = "failpoints")]
    pub fn arm(&self, step: CommitStep, passes: usize) {
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Armed {
            step,
            passes_left: passes,
        });
    }

    /// Whether the armed failpoint is still waiting to fire.
    #[cfg(feature = "failpoints")]
    pub fn is_armed(&self) -> bool {
        self.armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    #[cfg(feature = "failpoints")]
    pub(super) fn check(&self, step: CommitStep) -> Result<(), StoreError> {
        let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        match armed.as_mut() {
            Some(a) if a.step == step && a.passes_left == 0 => {
                *armed = None;
                Err(StoreError::Fault(format!("failpoint: stopped at {step:?}")))
            }
            Some(a) if a.step == step => {
                a.passes_left -= 1;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    #[cfg(not(feature = "failpoints"))]
    #[inline(always)]
    pub(super) fn check(&self, _step: CommitStep) -> Result<(), StoreError> {
        Ok(())
    }
}
