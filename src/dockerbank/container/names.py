"""Container IDs and names: 64-hex IDs, Docker-style ``adjective_surname`` names, validation."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from random import SystemRandom

from dockerbank.errors import InvalidArgument

# Docker's names.RestrictedNamePattern
NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

# A selection of Docker's pkg/namesgenerator lists.
ADJECTIVES = (  # noqa: SIM905 (readable word lists)
    "admiring adoring affectionate agitated amazing angry awesome beautiful blissful bold boring brave busy "
    "charming clever compassionate competent condescending confident cool cranky crazy dazzling determined "
    "distracted dreamy eager ecstatic elastic elated elegant eloquent epic exciting fervent festive flamboyant "
    "focused friendly frosty funny gallant gifted goofy gracious great happy hardcore heuristic hopeful hungry "
    "infallible inspiring intelligent interesting jolly jovial keen kind laughing loving lucid magical modest "
    "musing mystifying naughty nervous nice nifty nostalgic objective optimistic peaceful pedantic pensive "
    "practical priceless quirky quizzical recursing relaxed reverent romantic sad serene sharp silly sleepy "
    "stoic strange stupefied suspicious sweet tender thirsty trusting unruffled upbeat vibrant vigilant "
    "vigorous wizardly wonderful xenodochial youthful zealous zen"
).split()

SURNAMES = (  # noqa: SIM905
    "agnesi albattani allen almeida antonelli archimedes ardinghelli aryabhata austin babbage banach banzai "
    "bardeen bartik bassi beaver bell benz bhabha bhaskara black blackburn blackwell bohr booth borg bose "
    "bouman boyd brahmagupta brattain brown buck burnell cannon carson cartwright carver cerf chandrasekhar "
    "chaplygin chatelet chatterjee chaum chebyshev clarke cohen colden cori cray curie curran darwin davinci "
    "dewdney dhawan diffie dijkstra dirac driscoll dubinsky easley edison einstein elbakyan elgamal elion "
    "ellis engelbart euclid euler faraday feistel fermat fermi feynman franklin gagarin galileo galois "
    "ganguly gates gauss germain goldberg goldstine goldwasser golick goodall gould greider grothendieck "
    "haibt hamilton haslett hawking heisenberg hellman hermann herschel hertz heyrovsky hodgkin hofstadter "
    "hoover hopper hugle hypatia ishizaka jackson jang jemison jennings jepsen johnson joliot jones kalam "
    "kapitsa kare keldysh keller kepler khayyam khorana kilby kirch knuth kowalevski lalande lamarr lamport "
    "leakey leavitt lederberg lehmann lewin lichterman liskov lovelace lumiere mahavira margulis matsumoto "
    "maxwell mayer mccarthy mcclintock mclaren mclean mcnulty meitner mendel mendeleev meninsky merkle "
    "mestorf mirzakhani montalcini moore morse moser murdock napier nash neumann newton nightingale nobel "
    "noether northcutt noyce panini pare pascal pasteur payne perlman pike poincare poitras proskuriakova "
    "ptolemy raman ramanujan rhodes ride ritchie robinson roentgen rosalind rubin saha sammet sanderson "
    "satoshi shamir shannon shaw shirley shockley shtern sinoussi snyder solomon spence stonebraker "
    "sutherland swanson swartz swirles taussig tesla tharp thompson torvalds tu turing varahamihira "
    "vaughan villani visvesvaraya volhard wescoff wilbur wiles williams williamson wilson wing wozniak "
    "wright wu yalow yonath zhukovsky"
).split()


_SYSRAND = SystemRandom()  # what ``secrets`` uses, without its hmac/OpenSSL imports (start-up time)


def new_id() -> str:
    """A fresh 64-hex container ID (never all digits, so it is never mistaken for a number)."""
    while True:
        value = os.urandom(32).hex()
        if not value[:12].isdigit():
            return value


def random_name(taken: Callable[[str], bool]) -> str:
    """A readable unused name; ``taken(name)`` says whether one is in use.

    Like Docker, a digit is appended after collisions; ``boring_wozniak`` is never produced.
    """
    for attempt in range(20):
        name = f"{_SYSRAND.choice(ADJECTIVES)}_{_SYSRAND.choice(SURNAMES)}"
        if name == "boring_wozniak":
            continue
        if attempt > 5:
            name += str(_SYSRAND.randrange(10))
        if not taken(name):
            return name
    return f"{_SYSRAND.choice(ADJECTIVES)}_{_SYSRAND.choice(SURNAMES)}_{os.urandom(3).hex()}"


def validate_name(name: str) -> str:
    """The name without a leading slash; Docker's message for an invalid one."""
    if not NAME_RE.match(name):
        raise InvalidArgument(f'Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed',
                              exit_code=125)
    return name.lstrip("/")


def is_hex_prefix(text: str) -> bool:
    return 0 < len(text) <= 64 and all(c in "0123456789abcdef" for c in text)
