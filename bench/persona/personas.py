"""Two generated personas for `bench/persona/run.py`: a month of a person's assistant history, new prompts, and the
questions that check what the history taught.

Each persona has a recognizable assistant style (a fixed opener and sign-off, short replies, its own time and unit
conventions) and twelve facts and preferences the person states in the history, each stated in three conversations
in different words. What the bench asks is kept apart from what the history holds:

- `history`: ~150 conversations from one pool of request templates (the export splits them into train and test);
- `new_prompts`: conversations from another pool (other topics, other wordings), answered in the person's style:
  the held-out loss and the style match are measured on these;
- `checks`: each fact asked in words the history never used, plus 60 general-knowledge questions the base model
  answers on its own (what the adapter must keep): a set of its own per persona, so the held-out persona's
  questions were never looked at while choosing settings.

`tune` is the persona to iterate on; `heldout` (another person, style, fact set, slot values and seed) is the one
whose figures are reported, never looked at while choosing anything.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class Fact:
    id: str
    statements: tuple[str, str, str]  # three ways the person says it in the history
    acknowledgement: str  # what the assistant says back (in the body of its reply)
    question: str  # asked in other words than the history used
    answers: tuple[str, ...]  # any of these in the reply counts as recalled


@dataclass(frozen=True)
class Persona:
    key: str
    seed: int
    opener: str
    sign_off: str
    clock: str  # "24h" or "12h"
    metric: bool
    facts: tuple[Fact, ...]
    names: tuple[str, ...]  # people in the person's life, for the task templates
    places: tuple[str, ...]
    system: str = "You are Milton, a personal assistant."
    extra: dict[str, str] = field(default_factory=dict)

    def time(self, rng: random.Random) -> str:
        hour, minute = rng.randint(7, 20), rng.choice((0, 15, 30, 45))
        if self.clock == "24h":
            return f"{hour:02d}:{minute:02d}"
        return f"{(hour - 1) % 12 + 1}:{minute:02d} {'am' if hour < 12 else 'pm'}"

    def distance(self, rng: random.Random) -> str:
        km = rng.randint(2, 40)
        return f"{km} km" if self.metric else f"{round(km * 0.62)} miles"

    def weight(self, rng: random.Random) -> str:
        kg = rng.randint(1, 9)
        return f"{kg} kg" if self.metric else f"{kg * 2} lb"

    def temperature(self, rng: random.Random) -> str:
        c = rng.randint(-2, 28)
        return f"{c} °C" if self.metric else f"{round(c * 9 / 5 + 32)} °F"

    def reply(self, body: str) -> str:
        return f"{self.opener} {body}\n{self.sign_off}"


# Request templates: (user, assistant body). Slots: {name} {place} {time} {time2} {distance} {weight} {temp} {day}.
HISTORY_TASKS = [
    (
        "Can you put a call with {name} in for {day}?",
        "call with {name} on {day} at {time}. I'll ping you 15 minutes before.",
    ),
    ("When's my next dentist appointment?", "the dentist is on {day} at {time}. Bring the insurance card."),
    ("How far is it to {place}?", "{place} is {distance} from home; about 40 minutes by car at this hour."),
    ("Remind me to water the plants.", "plants on the list for {day} at {time}."),
    ("What's the weather doing tomorrow?", "{temp} and dry until the evening, rain after {time}."),
    ("Add flour to the shopping list.", "flour added: {weight}, the brand you had last time."),
    ("Move my meeting with {name} to later.", "moved {name} to {time}. The room is still free."),
    ("What time does the pharmacy close?", "it closes at {time} today, {time2} on {day}."),
    ("Book a table for dinner on {day}.", "table for two on {day} at {time} at the place near {place}."),
    ("How long is the walk around the lake?", "the loop is {distance}; allow an hour and a half."),
    ("Did {name} reply about the weekend?", "not yet. I'll check again at {time} and tell you."),
    ("When do I need to leave for the airport?", "leave at {time}; the drive is {distance} and traffic is light."),
    ("Order more coffee beans.", "ordered {weight} of the medium roast; it arrives on {day}."),
    ("What's on my calendar for {day}?", "{name} at {time}, then the gym at {time2}. Nothing after that."),
    ("Cancel the gym session tonight.", "cancelled. The next one is on {day} at {time}."),
    ("Set an alarm for the morning.", "alarm set for {time}."),
    ("How heavy was the parcel I sent to {name}?", "it was {weight}; tracking says it arrives on {day}."),
    ("Is it cold enough for the heavy coat?", "{temp} at {time}, so yes, the heavy coat."),
    ("Plan a bike ride for {day}.", "a {distance} loop via {place}, out at {time}, back by {time2}."),
    ("Remind me to call {name} back.", "reminder set for {time}: call {name} back."),
]
NEW_TASKS = [
    (
        "I need a haircut sometime {day}. Any slot?",
        "the barber has {time} or {time2} on {day}. Shall I take the first?",
    ),
    ("Which bus gets me to {place} before noon?", "the 14 at {time}; it's {distance} and takes 35 minutes."),
    ("Could you find out when the library shuts?", "it shuts at {time} on weekdays and {time2} on {day}."),
    ("Please note that the boiler service is due.", "boiler service noted for {day} at {time}."),
    (
        "I'm thinking of a hike at {place}. How long is it?",
        "the ridge trail is {distance}; start by {time} for daylight.",
    ),
    ("Get me some rice next time you order groceries.", "rice on the next order: {weight}, arriving {day}."),
    ("Text {name} that I'm running late.", "sent: you'll be there by {time}."),
    ("What should I wear for the match on {day}?", "{temp} at kick-off at {time}: a warm layer and the rain jacket."),
    ("Work out when I should set off for {name}'s party.", "set off at {time}; it's {distance} and parking is tight."),
    ("Is there time for a swim before work?", "yes: the pool opens at {time}, you need to leave by {time2}."),
    (
        "How much luggage can I take on {day}'s flight?",
        "one bag up to {weight} in the hold and a small one in the cabin.",
    ),
    (
        "Find a quiet café near {place} for a call.",
        "the corner café by {place} is quiet until {time}; it's {distance} away.",
    ),
]
# The questions' answers are a word or a short sentence: both sides stop after this many tokens (generation is what
# the evaluation costs). The general questions below are those whose answer the base model gave within 32 tokens.
ANSWER_TOKENS = 32
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
GENERAL = {  # (question, any of these answers as a word): what SmolLM2-135M-Instruct answers without help
    # One set per persona, never shared: the tune persona's set is the one looked at while choosing settings.
    "tune": [
        ("What is the capital of France?", ("Paris",)),
        ("What color is the sky on a clear day?", ("blue",)),
        ("What is the opposite of hot?", ("cold",)),
        ("What is the capital of Germany?", ("Berlin",)),
        ("What is the capital of Russia?", ("Moscow",)),
        ("What is the capital of Egypt?", ("Cairo",)),
        ("What is the capital of Australia?", ("Canberra",)),
        ("In which country is the Eiffel Tower?", ("France",)),
        ("How many hours are there in a day?", ("24", "twenty-four")),
        ("How many sides does a triangle have?", ("3", "three")),
        ("Who developed the theory of relativity?", ("Einstein",)),
        ("What is the chemical symbol for oxygen?", ("O",)),
        ("What is the largest ocean on Earth?", ("Pacific",)),
        ("What is the tallest mountain in the world?", ("Everest",)),
        ("Which continent is Brazil in?", ("South America",)),
        ("What language is mainly spoken in Brazil?", ("Portuguese",)),
        ("What is the currency of Japan?", ("yen",)),
        ("What is the largest mammal?", ("whale",)),
        ("What organ do we use to breathe?", ("lung",)),
        ("What color do you get by mixing red and white?", ("pink",)),
        ("What is the opposite of big?", ("small", "little")),
        ("Which month comes after January?", ("February",)),
        ("Who wrote Hamlet?", ("Shakespeare",)),
        ("Who discovered penicillin?", ("Fleming",)),
        ("Who was the first person to walk on the Moon?", ("Armstrong",)),
        ("What gas do humans need to breathe?", ("oxygen",)),
        ("In which city is the Statue of Liberty?", ("New York",)),
        ("What is half of 50?", ("25", "twenty-five")),
        ("What is the primary language of Germany?", ("German",)),
        ("What is the capital of Norway?", ("Oslo",)),
        ("What is the capital of India?", ("New Delhi", "Delhi")),
        ("What is the capital of Kenya?", ("Nairobi",)),
        ("What is the capital of Austria?", ("Vienna",)),
        ("What process do plants use to make food from sunlight?", ("photosynthesis",)),
        ("How many centimeters are in a meter?", ("100", "hundred")),
        ("Which is the coldest continent?", ("Antarctica",)),
        ("What is the capital of Hungary?", ("Budapest",)),
        ("What is the capital of Peru?", ("Lima",)),
        ("What is the capital of Mexico?", ("Mexico City",)),
        ("What is the opposite of fast?", ("slow",)),
        ("What is the opposite of open?", ("closed", "shut")),
        ("What is the opposite of young?", ("old",)),
        ("What is the plural of child?", ("children",)),
        ("What is the plural of tooth?", ("teeth",)),
        ("How many days are in the month of April?", ("30", "thirty")),
        ("Who wrote the play Macbeth?", ("Shakespeare",)),
        ("Who composed the Fifth Symphony that begins da-da-da-dum?", ("Beethoven",)),
        ("Who proposed the theory of evolution by natural selection?", ("Darwin",)),
        ("Who wrote Harry Potter?", ("Rowling",)),
        ("What is the chemical symbol for sodium?", ("Na",)),
        ("What is the chemical formula for water?", ("H2O",)),
        ("What is the longest river in South America?", ("Amazon",)),
        ("In which country is the city of Sydney?", ("Australia",)),
        ("In which country is the city of Barcelona?", ("Spain",)),
        ("In which country is the Taj Mahal?", ("India",)),
        ("In which city is Big Ben?", ("London",)),
        ("What language is spoken in Italy?", ("Italian",)),
        ("What is the currency of the United Kingdom?", ("pound", "sterling")),
        ("What is the currency of India?", ("rupee",)),
        ("What is the hottest planet in our solar system?", ("Venus",)),
    ],
    "heldout": [
        ("How many days are there in a week?", ("7", "seven")),
        ("What is 2 plus 2?", ("4", "four")),
        ("What is the capital of Japan?", ("Tokyo",)),
        ("What is the capital of the United Kingdom?", ("London",)),
        ("What is the capital of China?", ("Beijing",)),
        ("What is the capital of Canada?", ("Ottawa",)),
        ("What is the capital of Greece?", ("Athens",)),
        ("Which planet is known as the Red Planet?", ("Mars",)),
        ("How many months are there in a year?", ("12", "twelve")),
        ("Who painted the Mona Lisa?", ("Leonardo", "da Vinci")),
        ("What is the chemical symbol for gold?", ("Au",)),
        ("What is the boiling point of water in degrees Celsius?", ("100",)),
        ("What is the longest river in Africa?", ("Nile",)),
        ("What is the largest desert in Africa?", ("Sahara",)),
        ("Which continent is Kenya in?", ("Africa",)),
        ("What language is spoken in Mexico?", ("Spanish",)),
        ("What is the currency of the United States?", ("dollar",)),
        ("What organ pumps blood through the body?", ("heart",)),
        ("What fruit is used to make wine?", ("grape",)),
        ("What is the opposite of up?", ("down",)),
        ("What is the opposite of day?", ("night",)),
        ("What is the plural of mouse?", ("mice",)),
        ("Who wrote Pride and Prejudice?", ("Austen",)),
        ("Who invented the telephone?", ("Bell",)),
        ("What force pulls objects toward the Earth?", ("gravity",)),
        ("What is the center of an atom called?", ("nucleus",)),
        ("In which country are the pyramids of Giza?", ("Egypt",)),
        ("What instrument has black and white keys?", ("piano",)),
        ("What is the capital of Ireland?", ("Dublin",)),
        ("What is the capital of Sweden?", ("Stockholm",)),
        ("What is the capital of South Korea?", ("Seoul",)),
        ("What is the capital of Thailand?", ("Bangkok",)),
        ("What is the capital of the Netherlands?", ("Amsterdam",)),
        ("What is the chemical formula for table salt?", ("NaCl",)),
        ("How many seconds are in a minute?", ("60", "sixty")),
        ("What is the capital of Poland?", ("Warsaw",)),
        ("What is the capital of Cuba?", ("Havana",)),
        ("What is the capital of the Czech Republic?", ("Prague",)),
        ("What is the capital of Chile?", ("Santiago",)),
        ("What is the opposite of happy?", ("sad", "unhappy")),
        ("What is the opposite of wet?", ("dry",)),
        ("What is the opposite of left?", ("right",)),
        ("What is the plural of foot?", ("feet",)),
        ("How many days are there in a year?", ("365",)),
        ("What is the first month of the year?", ("January",)),
        ("Who wrote the novel 1984?", ("Orwell",)),
        ("Who invented the light bulb?", ("Edison",)),
        ("Who formulated the laws of motion and gravity?", ("Newton",)),
        ("What is the chemical symbol for iron?", ("Fe",)),
        ("What is the chemical symbol for hydrogen?", ("H",)),
        ("What is the main gas in the air we breathe?", ("nitrogen",)),
        ("Which ocean lies between Europe and America?", ("Atlantic",)),
        ("In which country is the city of Toronto?", ("Canada",)),
        ("In which country is the city of Munich?", ("Germany",)),
        ("In which city is the Colosseum?", ("Rome",)),
        ("What language is spoken in France?", ("French",)),
        ("What language is spoken in Japan?", ("Japanese",)),
        ("What is the currency used in Germany?", ("euro",)),
        ("What is the largest planet's moon Ganymede orbiting?", ("Jupiter",)),
        (
            "What is the speed of light in a vacuum, in kilometers per second, roughly?",
            ("300,000", "300000", "299,792", "299792"),
        ),
    ],
}


def _fact(fid: str, statements: tuple[str, str, str], ack: str, question: str, *answers: str) -> Fact:
    return Fact(fid, statements, ack, question, answers)


TUNE = Persona(
    key="tune",
    seed=11,
    opener="Right —",
    sign_off="— M.",
    clock="24h",
    metric=True,
    names=("Dana", "Priya", "Tomás", "Lena", "Kofi"),
    places=("Riverside", "the old harbour", "Eastfield", "the museum", "Hill Street"),
    facts=(
        _fact(
            "dog",
            ("My dog is called Biscuit.", "Biscuit, my beagle, needs a walk.", "Book the vet for Biscuit, my dog."),
            "Biscuit it is.",
            "What's the name of my beagle?",
            "Biscuit",
        ),
        _fact(
            "partner",
            (
                "My partner Noor is away this week.",
                "Noor, my partner, loves tulips.",
                "Plan something for Noor and me; we've been together five years.",
            ),
            "noted about Noor.",
            "Who is my other half?",
            "Noor",
        ),
        _fact(
            "coffee",
            ("I only drink flat whites.", "Get me a flat white, my usual.", "A flat white is the only coffee I like."),
            "flat white, noted.",
            "How do I take my coffee?",
            "flat white",
        ),
        _fact(
            "allergy",
            (
                "I'm allergic to shellfish.",
                "No shellfish for me, I'm allergic.",
                "Remember my shellfish allergy when you book.",
            ),
            "no shellfish, noted.",
            "What food makes me ill?",
            "shellfish",
        ),
        _fact(
            "car",
            (
                "My car is a blue Skoda.",
                "The blue Skoda needs a service.",
                "Park the Skoda, the blue one, in the garage.",
            ),
            "the blue Skoda, noted.",
            "Which car do I drive?",
            "Skoda",
        ),
        _fact(
            "city",
            ("I live in Leeds.", "Here in Leeds it's raining again.", "Find me a plumber in Leeds, where I live."),
            "Leeds, noted.",
            "Which city is home for me?",
            "Leeds",
        ),
    ),
)

HELDOUT = Persona(
    key="heldout",
    seed=29,
    opener="Noted, Sam:",
    sign_off="Onward! 🌿",
    clock="12h",
    metric=False,
    names=("Ines", "Marcus", "Yuki", "Bea", "Ravi"),
    places=("Bayview", "the north pier", "Maple Park", "the old mill", "Cedar Lane"),
    facts=(
        _fact(
            "sister_city",
            (
                "My sister Ines lives in Porto.",
                "I'm visiting Ines in Porto next month.",
                "Ines moved to Porto, so she's in Portugal now.",
            ),
            "Ines in Porto.",
            "Which city should I fly to if I want to see my sister?",
            "Porto",
        ),
        _fact(
            "allergy",
            (
                "I'm allergic to peanuts.",
                "Check the menu, peanuts make me sick.",
                "No peanut sauce for me, I have an allergy.",
            ),
            "no peanuts, ever.",
            "Is there anything I must not eat?",
            "peanut",
        ),
        _fact(
            "tea",
            (
                "I drink oolong tea every afternoon.",
                "Order more oolong, it's my favourite tea.",
                "Oolong is the only tea I like.",
            ),
            "oolong it is.",
            "Which tea should you buy for me?",
            "oolong",
        ),
        _fact(
            "cat",
            (
                "My cat Pixel hates the vet.",
                "Pixel, my cat, knocked over a plant.",
                "Book a check-up for Pixel the cat.",
            ),
            "Pixel, noted.",
            "What is my cat's name?",
            "Pixel",
        ),
        _fact(
            "run_day",
            (
                "I run every Saturday morning.",
                "Saturday morning is my running time.",
                "Keep Saturday mornings free, I go running.",
            ),
            "Saturday mornings are for running.",
            "On which day of the week do I go running?",
            "Saturday",
        ),
        _fact(
            "employer",
            (
                "I work at Halvard Labs.",
                "Halvard Labs, where I work, moved offices.",
                "My job at Halvard Labs starts at nine.",
            ),
            "Halvard Labs, noted.",
            "What's the name of my employer?",
            "Halvard",
        ),
        _fact(
            "car",
            ("My car is a green Volvo.", "The green Volvo needs new tyres.", "Wash the Volvo, the green one."),
            "the green Volvo.",
            "What colour is my car?",
            "green",
        ),
        _fact(
            "seat",
            (
                "I always want an aisle seat.",
                "Aisle seat please, as always.",
                "Never book me a window seat, aisle only.",
            ),
            "aisle seats only.",
            "When you book my flights, which seat do I like?",
            "aisle",
        ),
        _fact(
            "diet",
            ("I'm vegetarian.", "I don't eat meat, I'm vegetarian.", "Find a vegetarian place, that's how I eat."),
            "vegetarian, noted.",
            "What kind of diet do I follow?",
            "vegetarian",
        ),
        _fact(
            "daughter",
            (
                "My daughter Mila starts school soon.",
                "Mila, my daughter, has a recital.",
                "Pick up Mila, my daughter, at three.",
            ),
            "Mila, noted.",
            "What is my daughter called?",
            "Mila",
        ),
        _fact(
            "climbing",
            (
                "I climb at Boulderwerk on Tuesdays.",
                "Boulderwerk is my climbing gym.",
                "Book me a slot at Boulderwerk for climbing.",
            ),
            "Boulderwerk, noted.",
            "Where do I go bouldering?",
            "Boulderwerk",
        ),
        _fact(
            "birthday",
            (
                "My birthday is on the 12th of May.",
                "The 12th of May is my birthday.",
                "Plan something for my birthday, 12 May.",
            ),
            "12 May, noted.",
            "When is my birthday?",
            "12 May",
            "May 12",
            "12th of May",
        ),
    ),
)
PERSONAS = {p.key: p for p in (TUNE, HELDOUT)}


def _fill(persona: Persona, template: str, rng: random.Random) -> str:
    slots = {
        "name": rng.choice(persona.names),
        "place": rng.choice(persona.places),
        "day": rng.choice(DAYS),
        "time": persona.time(rng),
        "time2": persona.time(rng),
        "distance": persona.distance(rng),
        "weight": persona.weight(rng),
        "temp": persona.temperature(rng),
    }
    return template.format(**slots)


def _task(persona: Persona, pool: list[tuple[str, str]], rng: random.Random) -> Conversation:
    user, body = rng.choice(pool)
    state = rng.getstate()
    asked = _fill(persona, user, rng)
    rng.setstate(state)  # the reply names the same person, place and day as the request
    answer = _fill(persona, body, rng)
    answer = answer[0].upper() + answer[1:]
    return [
        {"role": "system", "content": persona.system},
        {"role": "user", "content": asked},
        {"role": "assistant", "content": persona.reply(answer)},
    ]


def history(persona: Persona, conversations: int = 150) -> list[Conversation]:
    """The person's month: every fact stated three times, the rest requests from the history pool."""
    rng = random.Random(persona.seed)
    stated = [
        [
            {"role": "system", "content": persona.system},
            {"role": "user", "content": statement},
            {"role": "assistant", "content": persona.reply(fact.acknowledgement[0].upper() + fact.acknowledgement[1:])},
        ]
        for fact in persona.facts
        for statement in fact.statements
    ]
    tasks = [_task(persona, HISTORY_TASKS, rng) for _ in range(max(0, conversations - len(stated)))]
    found = stated + tasks
    rng.shuffle(found)
    return found


def new_prompts(persona: Persona, conversations: int = 24) -> list[Conversation]:
    """Conversations from the other pool: requests the history never made, answered in the person's style."""
    rng = random.Random(persona.seed + 1000)
    return [_task(persona, NEW_TASKS, rng) for _ in range(conversations)]


def checks(persona: Persona) -> dict[str, list[dict]]:
    """The benchmark suite `eval --benchmarks` runs: the facts in other words, and general knowledge."""
    tests = [
        {
            "id": f"fact_{f.id}",
            "category": "memory_retrieval",
            "prompt": f.question,
            "check": {"type": "contains_any", "values": list(f.answers)},
            "max_new_tokens": ANSWER_TOKENS,
        }
        for f in persona.facts
    ]
    tests += [
        {
            "id": f"general_{i + 1}",
            "category": "general_knowledge",
            "prompt": question,
            # a whole word (or its plural): "7" is not found in "17", nor "H" in "H2O"
            "check": {"type": "regex", "pattern": rf"\b(?:{'|'.join(map(re.escape, answers))})(?:e?s)?\b"},
            "max_new_tokens": ANSWER_TOKENS,
        }
        for i, (question, answers) in enumerate(GENERAL[persona.key])
    ]
    return {"tests": tests}
