"""File descriptor 2 held around C libraries that write to it directly (Ray's core, ALSA,
PortAudio): what they said is kept for us to read, a spinner still reaches the terminal, and
the audio stack's probing chatter is left out when the rest is passed on."""

from __future__ import annotations

import os

from streamlid import native_stderr


def test_what_a_library_writes_on_descriptor_2_is_held_and_a_spinner_still_shows(capfd):
    from rich.console import Console

    console = Console(stderr=True)
    with native_stderr.held(console) as said:
        os.write(2, b"gcs_client.cc:210: Failed to get cluster ID from GCS server\n")
        console.print("Deploying model")
    shown = capfd.readouterr().err
    assert "Deploying model" in shown
    assert "gcs_client" not in shown
    assert "gcs_client.cc:210" in "".join(said)
    os.write(2, b"after\n")  # descriptor 2 is the terminal's again
    assert capfd.readouterr().err == "after\n"


def test_passing_on_leaves_out_the_audio_stacks_chatter_only(capfd):
    with native_stderr.held() as said:
        os.write(
            2,
            b"ALSA lib pcm_pulse.c:758:(pulse_prepare) PulseAudio: Unable to create stream\n"
            b"Expression 'ret' failed in 'src/hostapi/alsa/pa_linux_alsa.c', line: 1812\n"
            b"Cannot connect to server socket err = No such file or directory\n"
            b"something else that matters\n",
        )
    assert capfd.readouterr().err == ""
    native_stderr.pass_on(said)
    assert capfd.readouterr().err == "something else that matters\n"


def test_a_hold_that_never_returns_can_be_released_from_another_thread(capfd):
    """A library call that hangs inside a hold kept descriptor 2 in a temporary file: whatever
    the program wrote after it (a run's summary) was lost at exit."""
    import threading

    inside, let_go = threading.Event(), threading.Event()
    said_by_holder: list[str] = []

    def holder() -> None:
        with native_stderr.held() as said:
            os.write(2, b"Expression 'ret' failed in 'pa_linux_alsa.c'\n")
            inside.set()
            let_go.wait(10)
        said_by_holder.extend(said)

    thread = threading.Thread(target=holder)
    thread.start()
    assert inside.wait(10)
    native_stderr.release()
    os.write(2, b"the summary\n")
    assert capfd.readouterr().err == "the summary\n"
    let_go.set()
    thread.join(10)
    assert "Expression 'ret'" in "".join(said_by_holder)  # still the holder's to read
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
    native_stderr.release()  # with nothing held: nothing to do
