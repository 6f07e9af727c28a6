"""Turn an image caption (what is seen) into a Stable Audio Open prompt (what is heard).

Pure Python, standard library only, deterministic. The module is loaded both as
part of the node package and directly by file path, so it has no relative imports.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PRESET",
    "EVENT_LABELS",
    "EXTRA_BEDS",
    "FAMILIES",
    "GENERIC_BED",
    "GENERIC_EVENTS",
    "GENERIC_SOURCES",
    "MAX_LAYER_SOURCES",
    "MAX_PROMPT_WORDS",
    "MAX_SOURCES",
    "PRESETS",
    "PRESET_NAMES",
    "PROMPT_TOKEN_LIMIT",
    "Family",
    "LayeredPrompts",
    "Preset",
    "build_layered_prompts",
    "build_prompt",
    "clean_caption",
    "estimate_tokens",
    "explain_layered",
    "explain_prompt",
    "family_layers",
    "shorten_to_limit",
]

# Stable Audio Open's T5 encoder reads at most 128 tokens; stay well below it.
T5_MAX_TOKENS = 128
PROMPT_TOKEN_LIMIT = 120
MAX_PROMPT_WORDS = 60
MAX_SOURCES = 6
PRIMARY_SOURCES = 3  # sources guaranteed to the first family named in the caption
SCENE_MAX_WORDS = 12


@dataclass(frozen=True)
class Preset:
    """A style preset: qualifiers appended to the prompt and extra negative terms."""

    name: str
    qualifiers: tuple
    negative_extra: tuple
    description: str


@dataclass(frozen=True)
class Family:
    """A scene family: caption trigger words and the sounds they imply. ``voices`` marks scenes where speech
    murmur is wanted; ``weak`` families count only when nothing else matched."""

    name: str
    triggers: tuple
    sources: tuple
    voices: bool = False
    weak: bool = False


def _p(name: str, qualifiers: tuple[str, ...], negative_extra: tuple[str, ...], description: str) -> Preset:
    return Preset(name, qualifiers, negative_extra, description)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _p(
            "natural field recording",
            ("high quality field recording", "natural ambience", "spacious stereo", "detailed"),
            ("synthetic", "artificial sounds"),
            "Realistic, detailed location recording of the scene.",
        ),
        _p(
            "calm meditation bed",
            ("calm", "soft", "slow", "steady", "soothing relaxing ambience", "warm"),
            ("sudden loud sounds", "alarms", "sirens", "harsh transients", "percussion"),
            "Soft, slow and steady bed for relaxation or meditation.",
        ),
        _p(
            "cinematic atmosphere",
            ("cinematic atmosphere", "wide stereo", "deep", "immersive", "evolving soundscape"),
            ("thin sound", "lo-fi", "mono", "tinny"),
            "Wide, deep, evolving film-style atmosphere.",
        ),
        _p(
            "game background loop",
            ("seamless loopable background ambience", "steady", "even level", "consistent texture"),
            ("distinct events", "sudden sounds", "fade in", "fade out", "silence"),
            "Even, event-free ambience that loops cleanly behind gameplay.",
        ),
        _p(
            "cozy interior",
            ("cozy interior ambience", "warm", "close", "intimate", "soft room tone"),
            ("cold", "harsh", "large hall echo"),
            "Warm, close, intimate indoor ambience.",
        ),
    )
}
PRESET_NAMES: list[str] = list(PRESETS)
DEFAULT_PRESET = "natural field recording"

GENERIC_SOURCES: tuple[str, ...] = (
    "soft room tone",
    "distant ambient sounds",
    "gentle air movement",
    "subtle background hum",
)

BASE_NEGATIVE: tuple[str, ...] = (
    "music",
    "melody",
    "vocals",
    "singing",
    "speech",
    "talking",
    "distortion",
    "clipping",
    "low quality",
    "noise artifacts",
    "glitches",
    "harsh high frequencies",
    "abrupt cuts",
)


def _f(name: str, triggers: str, sources: tuple[str, ...], voices: bool = False, weak: bool = False) -> Family:
    # triggers are written "a|b|c" for compactness; keep order (first one is canonical)
    return Family(name, tuple(t.strip() for t in triggers.split("|")), sources, voices, weak)


# Order matters only as a tie-breaker (two families first named at the same word).
FAMILIES: tuple[Family, ...] = (
    _f("beach", "beach|sea|ocean|coast|coastline|shore|shoreline|seashore|seaside|surf|wave|surfer|surfing",
       ("waves breaking", "gentle wash on sand", "distant seagulls", "sea breeze")),
    _f("tropical", "palm tree|palm|tropical|island|lagoon",
       ("palm fronds rustling in the breeze", "tropical birds calling", "warm gentle wind")),
    _f("jungle", "jungle|rainforest|rain forest",
       ("dense tropical birdsong", "insects buzzing", "distant monkeys calling", "humid dripping foliage")),
    _f("forest", "forest|woods|woodland|tree|pine|grove|leaf|leaves|branch|log",
       ("birdsong", "leaves rustling in the wind", "distant woodpecker", "creaking branches")),
    _f("rain", "rain|raining|rainy|rainfall|drizzle|downpour|raindrop|umbrella|puddle",
       ("steady rain falling", "raindrops pattering", "water dripping from gutters")),
    _f("storm", "storm|stormy|thunder|thunderstorm|lightning|hurricane|tornado",
       ("rolling thunder", "heavy rain", "gusting wind")),
    _f("wind", "wind|windy|breeze|gust|windmill",
       ("wind blowing", "gusts of wind", "air whistling softly")),
    _f("fog", "fog|foggy|mist|misty|haze|hazy",
       ("muffled distant foghorn", "damp still air", "slow dripping moisture")),
    _f("sky", "sky|cloud|cloudy|sunset|sunrise|horizon|overcast",
       ("soft wind", "open air ambience", "faraway birds"), weak=True),
    _f("mountain", "mountain|peak|summit|cliff|valley|canyon|alps|hill|hillside|ridge",
       ("wind across the mountains", "distant bird calls echoing", "rustling alpine grass")),
    _f("river", "river|stream|creek|brook|rapids|riverbank|river bed",
       ("flowing river", "water babbling over stones", "birds by the water")),
    _f("waterfall", "waterfall|cascade",
       ("roaring waterfall", "rushing water", "water crashing on rocks")),
    _f("lake", "lake|pond|lakeside|reservoir|duck|swan|goose|geese",
       ("calm water lapping", "ducks quacking", "frogs croaking", "gentle breeze over the water")),
    _f("water", "water|splash",
       ("water gently lapping", "soft splashes"), weak=True),
    _f("night", "night|nighttime|moon|moonlight|starry|stars|dusk|evening|twilight|midnight",
       ("crickets chirping", "distant owl hooting", "quiet night air")),
    _f("street", "street|city street|sidewalk|alley|alleyway|crosswalk|intersection|avenue|road|fire hydrant",
       ("footsteps on pavement", "cars passing by", "distant car horns")),
    _f("city", "city|downtown|skyline|skyscraper|building|urban|metropolis",
       ("distant city hum", "traffic in the distance", "occasional sirens far away")),
    _f("traffic", "traffic|car|cars|taxi|truck|motorcycle|"
                  "scooter|vehicle|parking lot|parking space|gas station|parked car|sports car",
       ("traffic rumble", "engines idling", "tires on asphalt")),
    _f("highway", "highway|freeway|motorway|interstate|expressway",
       ("steady highway traffic", "cars whooshing past", "tire roar")),
    _f("car interior", "car interior|dashboard|steering wheel|inside a car|"
                       "inside of a car|backseat|back seat|windshield",
       ("muffled engine drone", "road noise inside the cabin", "soft turn signal ticking")),
    _f("bus", "bus|tram|streetcar|trolley|bus stop",
       ("bus engine idling", "air brakes hissing", "doors opening and closing")),
    _f("subway", "subway|metro|underground|subway station|metro station",
       ("subway train arriving", "rumble in the tunnel", "echoing underground hall")),
    _f("train", "train|railway|railroad|train station|station|locomotive|track|rail|platform",
       ("train passing on the tracks", "rhythmic clatter of wheels", "distant train horn")),
    _f("airport", "airport|plane|airplane|aircraft|jet|runway|terminal|airliner|aeroplane|helicopter",
       ("jet engines in the distance", "airplane taking off", "large terminal hall ambience")),
    _f("harbor", "harbor|harbour|port|marina|dock|pier|boat|ship|sailboat|yacht|ferry|lighthouse|canoe|kayak",
       ("boats creaking at the dock", "water slapping against hulls", "distant ship horn", "seagulls")),
    _f("snow", "snow|snowy|winter|blizzard|snowfall|snowman|ski|skiing|sled",
       ("crunching footsteps in snow", "soft winter wind", "hushed snowy stillness")),
    _f("arctic", "arctic|ice|icy|glacier|iceberg|antarctic|polar|frozen|tundra|penguin|polar bear",
       ("howling polar wind", "ice cracking", "creaking glacier")),
    _f("desert", "desert|dune|sand dune|sahara|cactus|cacti|camel",
       ("dry desert wind", "sand blowing", "sparse insect buzz")),
    _f("field", "field|meadow|grass|grassy|prairie|grassland|countryside|pasture|wheat|hay",
       ("wind through tall grass", "crickets and grasshoppers", "distant skylarks")),
    _f("farm", "farm|barn|farmyard|ranch|tractor|farmland|farmer",
       ("farmyard ambience", "rooster crowing", "distant tractor engine")),
    _f("cattle", "cow|cattle|bull|calf|ox",
       ("cows mooing", "cowbells", "hooves shuffling in grass")),
    _f("sheep", "sheep|lamb|goat|flock of sheep",
       ("sheep bleating", "goat bells", "animals grazing")),
    _f("horse", "horse|pony|donkey|stable|stallion|horseback",
       ("horse hooves on dirt", "horse snorting and neighing", "tack jingling")),
    _f("poultry", "chicken|hen|rooster|chick|turkey|coop",
       ("chickens clucking", "rooster crowing", "wings flapping")),
    _f("birds", "bird|parrot|pigeon|seagull|gull|crow|owl|eagle|sparrow|hawk|robin",
       ("birds chirping", "bird calls", "wings fluttering")),
    _f("dog", "dog|puppy|hound|dog park",
       ("distant dog barking", "dog panting softly", "paws padding on the floor")),
    _f("cat", "cat|kitten|kitty",
       ("cat purring", "soft meow", "quiet room tone")),
    _f("wildlife", "deer|wolf|fox|bear|elk|moose|wildlife|squirrel|rabbit",
       ("rustling undergrowth", "twigs snapping", "distant animal calls")),
    _f("savanna", "savanna|savannah|safari|lion|elephant|giraffe|zebra",
       ("distant lion roar", "elephants trumpeting", "dry savanna wind", "insects droning")),
    _f("insects", "insect|bug|butterfly|dragonfly|cicada|grasshopper",
       ("insects buzzing", "cicadas droning", "wings whirring")),
    _f("underwater", "underwater|under water|coral|reef|scuba|diver|diving|fish|whale|dolphin|shark|jellyfish|aquarium",
       ("muffled underwater rumble", "bubbles rising", "faint whale calls")),
    _f("cave", "cave|cavern|grotto|tunnel",
       ("water dripping in a cave", "deep reverberant echoes", "low rumble")),
    _f("swamp", "swamp|marsh|bog|wetland|bayou|mangrove|reed",
       ("frogs croaking", "insects humming", "slow bubbling water")),
    _f("garden", "garden|flower|bee|blossom|tulip|lavender|"
                 "sunflower|greenhouse|flower bed|backyard|flower pot|potted plant|plant",
       ("bees buzzing", "birdsong", "light breeze through leaves", "garden sprinkler")),
    _f("park", "park|playground|swing|seesaw|sandbox|children|child|kid|kids",
       ("children playing in the distance", "swings creaking", "birds in the trees"), voices=True),
    _f("plaza", "fountain|plaza|piazza|town square",
       ("fountain splashing", "pigeons cooing", "footsteps on cobblestones")),
    _f("path", "path|trail|footpath|dirt road|country road|gravel|hiking|hiker",
       ("footsteps on gravel", "twigs crunching underfoot", "light breeze")),
    _f("camping", "tent|camping|campsite|camper",
       ("tent fabric flapping in the wind", "crickets at the campsite", "zipper and rustling gear")),
    _f("fire", "fire|campfire|bonfire|fireplace|fire pit|flame|hearth|fireside|candle|torch",
       ("crackling fire", "logs popping", "embers hissing")),
    _f("emergency", "fire truck|fire engine|ambulance|police car|police|siren|firefighter",
       ("sirens wailing", "emergency vehicle passing", "radio chatter"), voices=True),
    _f("home", "living room|bedroom|couch|sofa|armchair|bed|apartment|room|interior|indoors|house|home|teddy bear",
       ("quiet room tone", "clock ticking", "soft household sounds")),
    _f("bathroom", "bathroom|shower|bathtub|bath|toilet|faucet",
       ("water running", "dripping faucet", "tiled room echo")),
    _f("kitchen", "kitchen|stove|oven|cooking|chef|pan|pot|cook",
       ("pots and pans clinking", "sizzling pan", "refrigerator hum", "water running in the sink")),
    _f("library", "library|bookshelf|bookshelves|book|bookstore|reading room|bookcase",
       ("pages turning", "hushed room tone", "soft footsteps on carpet")),
    _f("church", "church|cathedral|chapel|monastery|abbey|altar|pew",
       ("distant church bells", "footsteps echoing on stone", "large reverberant hall")),
    _f("temple", "temple|shrine|pagoda|buddha|monk|mosque|zen",
       ("resonant temple bell", "gentle wind chimes", "quiet courtyard ambience")),
    _f("castle", "castle|medieval|fortress|knight|throne|dungeon|ruins",
       ("wind howling through stone halls", "torches crackling", "distant clanking armor")),
    _f("village", "village|town|cottage|hamlet|cabin|farmhouse",
       ("quiet village ambience", "distant roosters", "dogs barking far away")),
    _f("market", "market|marketplace|bazaar|stall|vendor|street market|farmers market|fruit stand|fish market",
       ("bustling market chatter", "vendors calling", "rustling bags", "coins clinking"), voices=True),
    _f("mall", "mall|shopping mall|shop|store|supermarket|grocery|shopping|shopper",
       ("indoor crowd murmur", "shopping carts rattling", "checkout beeps"), voices=True),
    _f("cafe", "cafe|coffee shop|coffee|coffeehouse|espresso|bakery|diner|cup of coffee|coffee house|ice cream",
       ("espresso machine hissing", "cups clinking", "quiet cafe chatter"), voices=True),
    _f("restaurant", "restaurant|dining|dinner|dining room|cutlery|buffet|waiter|bistro|plate|wine",
       ("cutlery on plates", "restaurant chatter", "glasses clinking"), voices=True),
    _f("bar", "bar|pub|tavern|saloon|bartender|brewery|beer|cocktail|nightclub|pool table",
       ("glasses clinking", "lively bar chatter", "bottles being opened", "laughter"), voices=True),
    _f("office", "office|desk|computer|laptop|keyboard|cubicle|"
                 "workplace|coworker|monitor|printer|office space|meeting|office worker",
       ("keyboard typing", "muffled conversation", "air-conditioning hum", "distant phone ringing"), voices=True),
    _f("classroom", "classroom|school|student|lecture|teacher|blackboard|chalkboard|university|campus",
       ("classroom murmur", "chalk on a blackboard", "chairs scraping"), voices=True),
    _f("hospital", "hospital|clinic|ward|doctor|nurse|patient|surgery|medical|heart monitor",
       ("heart monitor beeping", "quiet corridor footsteps", "ventilation hum")),
    _f("construction", "construction|construction site|crane|excavator|"
                       "bulldozer|scaffolding|jackhammer|worker|construction worker",
       ("distant jackhammer", "hammering", "heavy machinery rumbling", "truck reversing beeps")),
    _f("factory", "factory|industrial|warehouse|machinery|machine|assembly line|workshop|power plant",
       ("machinery humming", "rhythmic mechanical clanking", "steam hissing")),
    _f("bridge", "bridge|overpass|viaduct|footbridge",
       ("footsteps on the bridge", "wind under the bridge", "water flowing below")),
    _f("pool", "swimming pool|pool|water park|swimmer|swimming",
       ("water splashing", "pool filter hum", "distant laughter"), voices=True),
    _f("stadium", "stadium|arena|football|soccer|baseball|basketball|tennis|sports|match",
       ("stadium crowd roaring", "cheering", "referee whistle"), voices=True),
    _f("crowd", "crowd|crowded|people|pedestrian|tourist|festival|parade|group of people",
       ("crowd murmur", "footsteps", "distant chatter"), voices=True),
    _f("concert", "concert|band|orchestra|stage|gig|choir|audience",
       ("live music from a stage", "audience murmur", "applause"), voices=True),
    _f("instrument", "piano|guitar|violin|cello|drum|saxophone|trumpet|flute|harp|musician|music",
       ("acoustic instrument playing softly nearby", "gentle notes drifting", "warm natural reverb")),
    _f("space", "space|outer space|space station|spaceship|spacecraft|astronaut|"
                "galaxy|nebula|planet|sci fi|futuristic|cyberpunk|robot",
       ("deep space drone", "low sci-fi hum", "ship engine rumble", "soft electronic beeps")),
    _f("bell tower", "clock tower|bell tower|big ben|belfry",
       ("distant tower bells chiming", "pigeons cooing", "open town square ambience")),
    _f("clock", "clock|grandfather clock|watch",
       ("clock ticking", "quiet room tone", "distant chime")),
)

# --- layered mode: bed textures vs. intermittent events -------------------------
# A layered soundscape is one steady background bed plus a few quieter, separately generated sources.
# Every phrase in a family's ``sources`` (and in GENERIC_SOURCES) that is listed here is a discrete,
# intermittent sound EVENT and gets a short label naming its main sound (for titles and logs; sources
# that share a label's main noun are never used together). Every phrase not listed is a continuous
# BED texture (waves, wind, rain, hum, room tone, crickets at night, crowd murmur...).
EVENT_LABELS: dict[str, str] = {
    # nature
    "distant seagulls": "gulls", "seagulls": "gulls",
    "tropical birds calling": "tropical birds", "dense tropical birdsong": "tropical birds",
    "distant monkeys calling": "monkeys", "birdsong": "birdsong", "distant woodpecker": "woodpecker",
    "creaking branches": "branches", "water dripping from gutters": "gutter drips",
    "rolling thunder": "thunder", "gusts of wind": "gusts", "muffled distant foghorn": "foghorn",
    "faraway birds": "birds", "distant bird calls echoing": "birds", "birds by the water": "birds",
    "ducks quacking": "ducks", "frogs croaking": "frogs", "soft splashes": "splashes",
    "distant owl hooting": "owl", "ice cracking": "ice", "creaking glacier": "glacier",
    "sparse insect buzz": "insects", "distant skylarks": "skylarks", "twigs snapping": "twigs",
    "distant animal calls": "animals", "distant lion roar": "lion", "elephants trumpeting": "elephants",
    "wings whirring": "wings", "bubbles rising": "bubbles", "faint whale calls": "whale",
    "water dripping in a cave": "drips", "garden sprinkler": "sprinkler",
    # animals
    "rooster crowing": "rooster", "distant roosters": "rooster", "distant tractor engine": "tractor",
    "cows mooing": "cows", "cowbells": "cowbells", "hooves shuffling in grass": "hooves",
    "sheep bleating": "sheep", "goat bells": "goat bells", "horse hooves on dirt": "hooves",
    "horse snorting and neighing": "horse", "tack jingling": "tack", "chickens clucking": "chickens",
    "wings flapping": "wings", "birds chirping": "birds", "bird calls": "birds", "wings fluttering": "wings",
    "distant dog barking": "dog", "dogs barking far away": "dog", "dog panting softly": "panting dog",
    "paws padding on the floor": "paws", "soft meow": "meow", "pigeons cooing": "pigeons",
    # traffic and transport
    "footsteps on pavement": "footsteps", "cars passing by": "passing cars", "distant car horns": "car horns",
    "occasional sirens far away": "sirens", "tires on asphalt": "tires", "cars whooshing past": "passing cars",
    "soft turn signal ticking": "turn signal", "air brakes hissing": "air brakes",
    "doors opening and closing": "doors", "subway train arriving": "arriving train",
    "train passing on the tracks": "passing train", "distant train horn": "train horn",
    "airplane taking off": "airplane", "boats creaking at the dock": "boats", "distant ship horn": "ship horn",
    "sirens wailing": "sirens", "emergency vehicle passing": "emergency vehicle", "radio chatter": "radio",
    # people, places, interiors
    "crunching footsteps in snow": "footsteps", "children playing in the distance": "children",
    "swings creaking": "swings", "birds in the trees": "birds", "footsteps on cobblestones": "footsteps",
    "footsteps on gravel": "footsteps", "twigs crunching underfoot": "twigs",
    "zipper and rustling gear": "zipper", "logs popping": "logs", "clock ticking": "clock",
    "dripping faucet": "faucet", "pots and pans clinking": "pots and pans", "water running in the sink": "sink",
    "pages turning": "pages", "soft footsteps on carpet": "footsteps", "distant church bells": "church bells",
    "footsteps echoing on stone": "footsteps", "resonant temple bell": "temple bell",
    "gentle wind chimes": "wind chimes", "torches crackling": "torches", "distant clanking armor": "armor",
    "vendors calling": "vendors", "rustling bags": "bags", "coins clinking": "coins",
    "shopping carts rattling": "carts", "checkout beeps": "checkout beeps",
    "espresso machine hissing": "espresso machine", "cups clinking": "cups", "cutlery on plates": "cutlery",
    "glasses clinking": "glasses", "bottles being opened": "bottles", "laughter": "laughter",
    "keyboard typing": "keyboard", "distant phone ringing": "phone", "chalk on a blackboard": "chalk",
    "chairs scraping": "chairs", "heart monitor beeping": "heart monitor", "quiet corridor footsteps": "footsteps",
    "distant jackhammer": "jackhammer", "hammering": "hammering", "truck reversing beeps": "reversing truck",
    "rhythmic mechanical clanking": "clanking", "steam hissing": "steam", "footsteps on the bridge": "footsteps",
    "water splashing": "splashes", "distant laughter": "laughter", "cheering": "cheering",
    "referee whistle": "whistle", "footsteps": "footsteps", "applause": "applause",
    "gentle notes drifting": "notes", "soft electronic beeps": "beeps", "distant tower bells chiming": "tower bells",
    "distant chime": "chime",
    # generic (unknown scene)
    "distant ambient sounds": "distant sounds",
}

# Bed textures for families whose sources are all events (families missing here fall back to GENERIC_BED).
EXTRA_BEDS: dict[str, tuple[str, ...]] = {
    "street": ("distant traffic hum",),
    "cattle": ("open pasture ambience",),
    "horse": ("open countryside ambience",),
    "poultry": ("farmyard ambience",),
    "birds": ("open air ambience",),
    "park": ("open park ambience", "light breeze"),
    "emergency": ("busy street ambience",),
}

# Bed of an unknown scene (and fallback bed of an all-event family): the continuous generic sources.
GENERIC_BED: tuple[str, ...] = tuple(s for s in GENERIC_SOURCES if s not in EVENT_LABELS)
GENERIC_EVENTS: tuple[str, ...] = tuple(s for s in GENERIC_SOURCES if s in EVENT_LABELS)

# --- caption cleaning --------------------------------------------------------

_COLOURS = (
    "red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "black", "white",
    "gray", "grey", "golden", "gold", "silver", "beige", "teal", "turquoise", "cyan", "magenta",
    "maroon", "navy", "crimson", "scarlet", "azure", "violet", "indigo", "tan", "bronze",
)
_SHADE = r"(?:light|dark|bright|pale|deep|pastel|neon|vivid|pure)"
_COLOUR_WORD = r"(?:" + "|".join(_COLOURS) + r")(?:ish)?"
_COLOUR_TERM = rf"(?:{_SHADE}\s+)?{_COLOUR_WORD}(?:\s+colou?red)?"
_COLOUR_RE = re.compile(rf"\b{_COLOUR_TERM}(?:(?:\s*,\s*|\s+and\s+|\s+or\s+|\s+){_COLOUR_TERM})*\b")

_ARTEFACT_RE = re.compile(r"\bar+af+e?(?:d|s)?\b|\barafed\b")
_LEADIN_RE = re.compile(
    r"\b(?:there\s+(?:is|are)|this\s+is|these\s+are|it\s+is|we\s+can\s+see|you\s+can\s+see|"
    r"(?:this|the)\s+(?:image|picture|photo)\s+(?:shows|depicts|contains))\b"
)
_FRAME_RE = re.compile(
    r"\b(?:(?:a|an|the)\s+)?"
    r"(?:(?:blurry|blurred|close\s+up|closeup|old|vintage|black\s+and\s+white|aerial|wide|wide\s+angle|"
    r"panoramic|beautiful|nice|great|stock|digital|high\s+quality|hd|\d+k|long\s+exposure|cropped)\s+)*"
    r"(?:picture|photo|photograph|photography|image|painting|drawing|illustration|view|sketch|rendering|"
    r"render|shot|screenshot|close\s+up|closeup|scene|postcard|poster|artwork|wallpaper|snapshot)s?"
    r"\s+(?:of|from|showing|depicting|with)\b"
)
_VISUAL_RE = re.compile(
    r"\b(?:in\s+the\s+(?:background|foreground|distance\s+background)|with\s+a\s+blurry\s+background|"
    r"background|foreground|photo|photograph|photography|picture|image|painting|drawing|illustration|"
    r"sketch|cartoon|rendering|render|screenshot|wallpaper|stock|closeup|close\s+up|blurry|blurred|"
    r"colorful|colourful|multicolou?red|multi\s+colou?red|beautiful|pretty|picturesque|scenic|"
    r"vibrant|shiny|hd|4k|8k|3d)\b"
)
_DUP_RE = re.compile(r"\b(\w+(?:\s+\w+){0,3})(?:\s+\1\b)+")
_EDGE_WORDS = frozenset("a an the and or with of in on at to for by from".split())
_LEADING_DROP = frozenset("and or with of in on at to for by from".split())


def _strip_control(text: str) -> str:
    """Map tabs/newlines to spaces and delete every other control/format character."""
    out = []
    for ch in text:
        if ch in "\t\n\r\v\f":
            out.append(" ")
        elif unicodedata.category(ch)[0] == "C":
            continue
        else:
            out.append(ch)
    return "".join(out)


_GAP = "\x00"  # marks where words were removed (control chars are stripped before)
_GAP_ARTICLE_RE = re.compile(r"\b(an?)((?:\s*\x00)+)\s*([a-z0-9]\w*)")


def _fix_articles(text: str) -> str:
    """Repair "a"/"an" in front of a word that became adjacent through a removal."""

    def repl(m: re.Match[str]) -> str:
        word = m.group(3)
        if word[0] == "u" or word[0].isdigit() or word.startswith(("one", "once", "eu")):
            return f"{m.group(1)} {word}"
        vowel = word[0] in "aeio" or word.startswith(("hour", "honest", "heir", "honor", "honour"))
        return ("an " if vowel else "a ") + word

    return _GAP_ARTICLE_RE.sub(repl, text)


def _tidy_edges(text: str, leading: frozenset[str] = _LEADING_DROP) -> str:
    words = text.replace(",", " , ").split()
    while words and (words[0] in leading or words[0] == ","):
        words.pop(0)
    while words and (words[-1] in _EDGE_WORDS or words[-1] == ","):
        words.pop()
    return " ".join(words).replace(" , ", ", ")


def _clean(caption: object) -> tuple[str, list[str]]:
    """Clean a caption and report what was removed."""
    if caption is None:
        return "", []
    text = _strip_control(str(caption))
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower().replace("'", "").replace("\u2019", "")
    # keep plain latin letters, digits and commas; everything else (emoji, other scripts) -> space
    text = re.sub(r"[^a-z0-9,]+", " ", text)
    text = re.sub(r"\s*,[\s,]*", ", ", text)
    text = " ".join(text.split())
    dropped: list[str] = []

    def drop(rx: re.Pattern[str], s: str) -> str:
        def rm(m: re.Match[str]) -> str:
            dropped.append(" ".join(m.group(0).split()))
            return f" {_GAP} "

        return rx.sub(rm, s)

    for rx in (_ARTEFACT_RE, _LEADIN_RE, _FRAME_RE, _COLOUR_RE, _VISUAL_RE):
        text = drop(rx, text)
    text = _fix_articles(text)
    text = " ".join(text.replace(_GAP, " ").split())
    text = _DUP_RE.sub(r"\1", text)
    text = re.sub(r"\s+,", ",", text)
    text = re.sub(r",(?:\s*,)+", ",", text)
    text = re.sub(r"\b(?:and|with|or)\s+(?=,|$)", "", text)
    text = _tidy_edges(text)
    return text, dropped


def clean_caption(caption: str) -> str:
    """Normalise a BLIP caption and strip purely visual words.

    Lower-cases, removes control characters, non-Latin characters and emoji, BLIP
    artefacts ("arafed", "araffe"), lead-ins ("there is", "a picture of",
    "a photography of", "a close up of", "a view of"), colours, camera words and
    "in the background", then collapses whitespace.

    Args:
        caption: Raw caption text (``None`` is treated as empty).

    Returns:
        The cleaned caption; may be empty.
    """
    return _clean(caption)[0]


# --- scene matching ------------------------------------------------------------


def _variants(trigger: str) -> list[str]:
    """Singular/plural forms of a trigger (inflecting its last word)."""
    words = trigger.split()
    last = words[-1]
    forms = [last]
    if re.search(r"(?:s|x|z|ch|sh)$", last):
        forms.append(last + "es")
    elif re.search(r"[^aeiou]y$", last):
        forms.append(last[:-1] + "ies")
    else:
        forms.append(last + "s")
    if last.endswith("fe"):
        forms.append(last[:-2] + "ves")
    elif last.endswith("f"):
        forms.append(last[:-1] + "ves")
    head = " ".join(words[:-1])
    return [f"{head} {f}".strip() for f in forms]


def _build_index() -> tuple[dict[str, tuple[int, str]], int]:
    """Map every trigger form to (family index, trigger); listed forms beat generated plurals."""
    index: dict[str, tuple[int, str]] = {}
    for fi, fam in enumerate(FAMILIES):
        for trig in fam.triggers:
            if trig in index and index[trig][0] != fi:
                raise ValueError(f"trigger {trig!r} is listed in two families")
            index[trig] = (fi, trig)
    for fi, fam in enumerate(FAMILIES):
        for trig in fam.triggers:
            for form in _variants(trig)[1:]:
                index.setdefault(form, (fi, trig))
    return index, max(len(k.split()) for k in index)


_INDEX, _LONGEST = _build_index()


def _match(cleaned: str) -> list[tuple[int, int, str]]:
    """Leftmost-longest whole-word matches: (word position, family index, matched text)."""
    words = re.findall(r"[a-z0-9]+", cleaned)
    hits: list[tuple[int, int, str]] = []
    i = 0
    while i < len(words):
        for n in range(min(_LONGEST, len(words) - i), 0, -1):
            key = " ".join(words[i : i + n])
            found = _INDEX.get(key)
            if found is not None:
                hits.append((i, found[0], key))
                i += n
                break
        else:
            i += 1
    return hits


def _families_in_order(hits: list[tuple[int, int, str]]) -> list[int]:
    first: dict[int, int] = {}
    for pos, fi, _ in hits:
        first.setdefault(fi, pos)
    order = sorted(first, key=lambda fi: (first[fi], fi))
    strong = [fi for fi in order if not FAMILIES[fi].weak]
    return strong or order


_DAYTIME_RE = re.compile(r"bird|gull|skylark|woodpecker|rooster")  # sources that do not fit a night scene


def _pick_sources(family_ids: list[int]) -> list[str]:
    """Up to MAX_SOURCES deduplicated sources; the first family gets a head start."""
    if not family_ids:
        return list(GENERIC_SOURCES)
    chosen: list[list[str]] = [[] for _ in family_ids]
    cursors = [0] * len(family_ids)
    night = any(FAMILIES[fi].name == "night" for fi in family_ids)
    seen: set[str] = set()
    total = 0

    def take(k: int) -> bool:
        nonlocal total
        srcs = FAMILIES[family_ids[k]].sources
        while cursors[k] < len(srcs):
            s = srcs[cursors[k]]
            cursors[k] += 1
            if s not in seen and not (night and _DAYTIME_RE.search(s)):
                seen.add(s)
                chosen[k].append(s)
                total += 1
                return True
        return False

    for _ in range(PRIMARY_SOURCES):
        if total < MAX_SOURCES:
            take(0)
    progress = True
    while total < MAX_SOURCES and progress:
        progress = False
        for k in range(len(family_ids)):
            if total >= MAX_SOURCES:
                break
            progress = take(k) or progress
    return [s for group in chosen for s in group]


_PREPS = (
    r"(?:in\s+front\s+of|on\s+top\s+of|next\s+to|inside|into|down|up|on|at|in|near|by|along|across|through|"
    r"under|over|around|to|with|from)"
)
_SUBJECT_RE = re.compile(
    r"^(?:(?:a|an|the|two|three|four|five|several|some|many|a\s+group\s+of|group\s+of|a\s+couple\s+of|couple\s+of)\s+)*"
    r"(?:(?:young|old|little|small)\s+)?"
    r"(?:man|men|woman|women|person|people|boy|boys|girl|girls|child|children|kid|kids|lady|ladies|guy|guys|"
    r"couple|family|tourist|tourists|surfer|surfers|student|students|worker|workers)\s+"
    r"(?:(?:is|are)\s+)?"
    rf"(?:\w+ing\s+(?:{_PREPS}\s+)?|{_PREPS}\s+)"
)
_LEADING_VERB_RE = re.compile(rf"^\s*(?:is\s+|are\s+)?\w+ing\s+(?:{_PREPS}\s+)?(?=(?:a|an|the)\b)")


def _scene_phrase(cleaned: str) -> str:
    """Short "ambience of ..." phrase from the cleaned caption ("" if nothing usable)."""
    np = cleaned.replace(",", " ")
    np = _SUBJECT_RE.sub("", np, count=1)
    np = _LEADING_VERB_RE.sub("", np, count=1)  # "araffe standing in a field" -> "a field"
    words = np.split()[:SCENE_MAX_WORDS]
    np = _tidy_edges(" ".join(words), _LEADING_DROP | {"inside", "near", "next", "under", "along"})
    if not np:
        return ""
    parts = np.split()
    if len(parts) <= 2 and parts[0] not in ("a", "an", "the"):
        return f"{np} ambience"
    return f"ambience of {np}"


# --- negative prompt -----------------------------------------------------------

_MUSIC_RE = re.compile(
    r"\b(?:music|musical|musician|musicians|band|bands|concert|concerts|piano|pianos|guitar|guitars|violin|"
    r"violins|cello|orchestra|drum|drums|drummer|singer|singers|singing|song|songs|choir|jazz|melody|"
    r"melodies|dj|opera|saxophone|trumpet|flute|harp|vocals|instrument|instruments)\b"
)
_SINGING_RE = re.compile(
    r"\b(?:sing|sings|singing|singer|singers|choir|vocal|vocals|song|songs|opera|chant|chanting)\b"
)
_VOICE_RE = re.compile(
    r"\b(?:voice|voices|talking|talk|speech|conversation|conversations|chatter|chatting|murmur|whisper|"
    r"whispers|whispering|laughter|laughing|people|crowd)\b"
)


def _norm_tokens(text: str) -> list[str]:
    toks = re.findall(r"[a-z0-9]+", text.lower())
    return [t[:-1] if len(t) > 3 and t.endswith("s") else t for t in toks]


def _contains_phrase(hay: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(hay[i : i + n] == needle for i in range(len(hay) - n + 1))


def _negative(prompt: str, preset: Preset, family_ids: list[int], caption: str, extra: str) -> str:
    wanted = f"{caption} {extra.lower()}"
    voices = any(FAMILIES[fi].voices for fi in family_ids) or bool(_VOICE_RE.search(wanted))
    music = bool(_MUSIC_RE.search(wanted))
    singing = bool(_SINGING_RE.search(wanted))
    remove: set[str] = set()
    if voices:
        remove |= {"speech", "talking"}
    if music:
        remove |= {"music", "melody"}
    if singing:
        remove |= {"singing", "vocals"}
    hay = _norm_tokens(prompt)
    terms: list[str] = []
    for term in BASE_NEGATIVE + preset.negative_extra:
        if term in remove or term in terms or _contains_phrase(hay, _norm_tokens(term)):
            continue
        terms.append(term)
    return ", ".join(terms)


# --- shortening ----------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """Conservative T5 token estimate.

    Args:
        text: Prompt text.

    Returns:
        About 1.5 tokens per word, one more per 8 letters of long words, one per
        punctuation mark or non-Latin character, plus the end-of-sequence token.
    """
    pieces = re.findall(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]", text)
    words = [p for p in pieces if p[0].isascii() and p[0].isalnum()]
    other = len(pieces) - len(words)
    return math.ceil(1.5 * len(words)) + sum(len(w) // 8 for w in words) + other + 1


_TRAILING_CONNECTORS = frozenset("a an the and or with of in on at to for by from as".split())


def _tidy_cut(words: list[str]) -> str:
    ws = list(words)
    while len(ws) > 1 and ws[-1].rstrip(",;:-").lower() in _TRAILING_CONNECTORS:
        ws.pop()
    text = " ".join(ws)
    return text.rstrip(" ,;:-")


def shorten_to_limit(text: str, max_tokens: int, count_tokens: Callable[[str], int] | None = None) -> str:
    """Shorten text from the end on a word (preferably comma) boundary until it fits.

    Args:
        text: Text to shorten.
        max_tokens: Largest allowed ``count_tokens(result)``.
        count_tokens: Token counter (assumed to grow with length); defaults to
            :func:`estimate_tokens`.

    Returns:
        ``text`` unchanged if it fits, otherwise its longest fitting prefix that ends
        on a whole word, preferring one that ends at a comma; "" if no word fits.
    """
    count = count_tokens or estimate_tokens
    if count(text) <= max_tokens:
        return text
    words = text.split()
    best_word = ""
    best_word_n = 0
    best_comma = ""
    best_comma_n = 0
    for n in range(1, len(words) + 1):
        if count(" ".join(words[:n])) > max_tokens:
            break  # counters grow with length: longer prefixes cannot fit
        cand = _tidy_cut(words[:n])
        if cand and count(cand) <= max_tokens:
            best_word, best_word_n = cand, n
            if words[n - 1].endswith(","):
                best_comma, best_comma_n = cand, n
    if best_comma and best_comma_n * 2 >= best_word_n:
        return best_comma
    return best_word


# --- public API -----------------------------------------------------------------


def _get_preset(preset: str) -> Preset:
    if isinstance(preset, str):
        if preset in PRESETS:
            return PRESETS[preset]
        key = " ".join(preset.split()).lower()
        for name, p in PRESETS.items():
            if name.lower() == key:
                return p
    names = ", ".join(PRESET_NAMES)
    raise ValueError(
        f'Build Ambient Prompt: "preset" is "{preset}" but must be one of: {names}. Pick one from the list.'
    )


def _clean_extra(extra: object) -> str:
    if extra is None:
        return ""
    text = _strip_control(str(extra))
    text = " ".join(text.split())
    text = re.sub(r"\s*,[\s,]*", ", ", text)
    return text.strip(" ,")


def _analyse(caption: str, preset: str, extra: str) -> dict:
    p = _get_preset(preset)
    cleaned, dropped = _clean(caption)
    hits = _match(cleaned)
    family_ids = _families_in_order(hits)
    used = set(family_ids)
    scene_words: list[str] = []
    for _, fi, word in hits:
        if fi in used and word not in scene_words:
            scene_words.append(word)
    sources = _pick_sources(family_ids)
    scene = _scene_phrase(cleaned)
    extra_text = _clean_extra(extra)
    segments: list[str] = []
    for seg in [*sources, scene, extra_text, *p.qualifiers]:
        if seg and seg not in segments:
            segments.append(seg)
    return {
        "preset": p,
        "cleaned": cleaned,
        "dropped": dropped,
        "family_ids": family_ids,
        "scene_words": scene_words,
        "sources": sources,
        "extra": extra_text,
        "full_prompt": ", ".join(segments),
    }


def _unshortened_prompt(caption: str, preset: str = DEFAULT_PRESET, extra: str = "") -> str:
    """The prompt before length limiting (for tests and debugging)."""
    return _analyse(caption, preset, extra)["full_prompt"]


def _fit(text: str) -> str:
    text = shorten_to_limit(text, MAX_PROMPT_WORDS, lambda s: len(s.split()))
    return shorten_to_limit(text, PROMPT_TOKEN_LIMIT)


def build_prompt(caption: str, preset: str = DEFAULT_PRESET, extra: str = "") -> tuple[str, str]:
    """Build a Stable Audio Open prompt and negative prompt from an image caption.

    Args:
        caption: Image caption (what is seen); empty gives a generic ambience.
        preset: One of ``PRESET_NAMES``.
        extra: Optional user detail text, inserted before the preset qualifiers.

    Returns:
        ``(prompt, negative_prompt)``, each within ``MAX_PROMPT_WORDS`` words and
        ``PROMPT_TOKEN_LIMIT`` estimated T5 tokens. Deterministic.

    Raises:
        ValueError: If ``preset`` is not a known preset name.
    """
    info = _analyse(caption, preset, extra)
    prompt = _fit(info["full_prompt"])
    negative = _fit(_negative(prompt, info["preset"], info["family_ids"], info["cleaned"], info["extra"]))
    log.debug("ambient prompt: families=%s prompt=%r", [FAMILIES[fi].name for fi in info["family_ids"]], prompt)
    return prompt, negative


def explain_prompt(caption: str, preset: str = DEFAULT_PRESET, extra: str = "") -> dict:
    """Report what the prompt builder matched, for logging and the CLI.

    Args:
        caption: Image caption.
        preset: One of ``PRESET_NAMES``.
        extra: Optional user detail text.

    Returns:
        ``{"scene_words", "families", "sources", "dropped", "preset"}``: matched
        caption words, family names in caption order, chosen sound sources, words
        removed from the caption, and the preset name.
    """
    info = _analyse(caption, preset, extra)
    return {
        "scene_words": list(info["scene_words"]),
        "families": [FAMILIES[fi].name for fi in info["family_ids"]],
        "sources": list(info["sources"]),
        "dropped": list(info["dropped"]),
        "preset": info["preset"].name,
    }


# --- layered mode ----------------------------------------------------------------

MAX_LAYER_SOURCES = 3  # most separate source prompts a layered soundscape gets
MAX_BED_TEXTURES = 3  # most family textures in the bed prompt
BED_STEADY = "steady continuous background ambience"
SOURCE_FLAVOUR = ("occasional", "distinct isolated sound")
SOURCE_BACKGROUND = "quiet background"
# Source prompts take a preset's style but not its bed words ("seamless loopable background ambience").
_SOURCE_STYLE: dict[str, tuple[str, ...]] = {
    "natural field recording": ("natural field recording",),
    "calm meditation bed": ("soft", "gentle"),
    "cinematic atmosphere": ("cinematic", "wide stereo"),
    "game background loop": ("clean sound effect",),
    "cozy interior": ("warm", "close"),
}
# Preset negative terms that would fight a generation of isolated events; left out of the shared
# negative whenever there are sources.
_EVENT_HOSTILE_NEGATIVE = frozenset({"distinct events", "sudden sounds", "silence"})
_LABEL_NOUN_ALIASES = {"birdsong": "bird", "cowbell": "bell"}


@dataclass(frozen=True)
class LayeredPrompts:
    """Prompts for a layered soundscape: one steady bed plus up to three separate, intermittent sources.

    ``sources[i]`` is labelled ``source_names[i]``; ``negative`` is shared by all prompts."""

    bed: str
    sources: tuple[str, ...]
    negative: str
    source_names: tuple[str, ...]


def family_layers(family: Family) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split a family's sounds into continuous bed textures and intermittent events.

    Args:
        family: One of ``FAMILIES``.

    Returns:
        ``(beds, events)``: ``beds`` is never empty (sources not in ``EVENT_LABELS``, then
        ``EXTRA_BEDS[family.name]``, else ``GENERIC_BED``); ``events`` are the sources listed in
        ``EVENT_LABELS``, in family order.
    """
    events = tuple(s for s in family.sources if s in EVENT_LABELS)
    return _own_beds(family) or GENERIC_BED[:2], events


def _own_beds(family: Family) -> tuple[str, ...]:
    return tuple(s for s in family.sources if s not in EVENT_LABELS) + EXTRA_BEDS.get(family.name, ())


def _noun_key(label: str) -> str:
    """The main noun of a source label (last word, singular): "church bells" -> "bell"."""
    toks = _norm_tokens(label)
    last = toks[-1] if toks else label
    return _LABEL_NOUN_ALIASES.get(last, last)


def _round_robin(groups: list[tuple[str, ...]], limit: int, accept: Callable[[str], bool]) -> list[str]:
    """Take the 1st item of each group in order, then the 2nd..., while ``accept`` says yes, up to ``limit``."""
    out: list[str] = []
    depth = max((len(g) for g in groups), default=0)
    for d in range(depth):
        for g in groups:
            if len(out) >= limit:
                return out
            if d < len(g) and accept(g[d]):
                out.append(g[d])
    return out


def _join_new(segments: list[str]) -> str:
    """Join segments with commas, skipping empty ones and ones whose words already appear in order."""
    kept: list[str] = []
    hay: list[str] = []
    for seg in segments:
        toks = _norm_tokens(seg)
        if not seg or not toks or _contains_phrase(hay, toks):
            continue
        kept.append(seg)
        hay.extend(toks)
        hay.append("")  # no phrase match across a comma
    return ", ".join(kept)


def _neg_split(negative: str) -> list[str]:
    return [t.strip() for t in negative.split(",") if t.strip()]


def _check_max_sources(max_sources: object) -> int:
    if isinstance(max_sources, bool) or not isinstance(max_sources, int) or not (
        0 <= max_sources <= MAX_LAYER_SOURCES
    ):
        raise ValueError(
            f'Build Ambient Prompt: "sources" is {max_sources!r} but must be 0 to {MAX_LAYER_SOURCES}. '
            f"Pick a whole number from 0 (bed only) to {MAX_LAYER_SOURCES}."
        )
    return max_sources


def _analyse_layers(caption: str, preset: str, extra: str) -> dict:
    info = _analyse(caption, preset, extra)
    family_ids: list[int] = info["family_ids"]
    night = any(FAMILIES[fi].name == "night" for fi in family_ids)

    def fits(s: str) -> bool:
        return not (night and _DAYTIME_RE.search(s))

    layers = [family_layers(FAMILIES[fi]) for fi in family_ids]
    # an all-event family's generic fallback bed is used only when no matched family has a bed of its own
    bed_groups = [_own_beds(FAMILIES[fi]) for fi in family_ids]
    if not any(bed_groups):
        bed_groups = [beds for beds, _ in layers] or [GENERIC_BED]
    seen_beds: set[str] = set()

    def new_bed(s: str) -> bool:
        if s in seen_beds or not fits(s):
            return False
        seen_beds.add(s)
        return True

    textures = _round_robin(bed_groups, MAX_BED_TEXTURES, new_bed)

    # events: caption families in caption order, then (as one more family) events the extra text names outright
    event_groups = [events for _, events in layers]
    extra_tokens = set(_norm_tokens(info["extra"]))
    extra_fids = [fi for fi in _families_in_order(_match(_clean(info["extra"])[0])) if fi not in family_ids]
    for fi in extra_fids:
        named = tuple(e for e in family_layers(FAMILIES[fi])[1] if extra_tokens & set(_norm_tokens(e)))
        if named:
            event_groups.append(named)
    if not family_ids and not any(event_groups):
        event_groups = [GENERIC_EVENTS]
    nouns: set[str] = set()  # main nouns of the chosen events
    words: set[str] = set()  # every word of the chosen events

    def new_event(s: str) -> bool:
        # one main noun per source: "distant car horns" is skipped after "cars passing by"
        key = _noun_key(EVENT_LABELS[s])
        toks = set(_norm_tokens(s)) | {key}
        if key in words or nouns & toks or not fits(s):
            return False
        nouns.add(key)
        words.update(toks)
        return True

    events = _round_robin(event_groups, MAX_LAYER_SOURCES, new_event)
    return {**info, "textures": textures, "events": events, "extra_family_ids": extra_fids}


def build_layered_prompts(
    caption: str, preset: str = DEFAULT_PRESET, extra: str = "", max_sources: int = MAX_LAYER_SOURCES
) -> LayeredPrompts:
    """Build prompts for a layered soundscape from one image caption.

    The bed is the steady background texture of the scene (generate it at full level); each source is
    one distinct, intermittent sound (generate each separately and mix it in quieter, panned).

    Args:
        caption: Image caption (what is seen); empty or unknown gives a generic bed and one generic source.
        preset: One of ``PRESET_NAMES``; its qualifiers go on the bed, its style on the sources.
        extra: Optional user detail, added to the bed; an event it names outright ("thunder") may also
            become a source, ranked like one more family named after the caption's.
        max_sources: How many source prompts at most, 0 to ``MAX_LAYER_SOURCES``. Sources are taken
            round-robin over the families in caption order (each family's first event, then second...),
            one per main noun; fewer come back when the scene has fewer distinct events, and duplicates
            are never used as padding.

    Returns:
        A :class:`LayeredPrompts`. Every prompt, and the shared negative (built by the same rules as
        :func:`build_prompt`'s and contradicting none of the prompts), is within ``MAX_PROMPT_WORDS``
        words and ``PROMPT_TOKEN_LIMIT`` estimated T5 tokens. Deterministic.

    Raises:
        ValueError: If ``preset`` is unknown or ``max_sources`` is not a whole number from 0 to 3.
    """
    n = _check_max_sources(max_sources)
    info = _analyse_layers(caption, preset, extra)
    p: Preset = info["preset"]
    scene = _scene_phrase(info["cleaned"])
    bed = _fit(_join_new([*info["textures"], scene, BED_STEADY, info["extra"], *p.qualifiers]))
    style = _SOURCE_STYLE.get(p.name, _SOURCE_STYLE[DEFAULT_PRESET])
    events = info["events"][:n]
    sources = tuple(_fit(_join_new([e, *SOURCE_FLAVOUR, *style, SOURCE_BACKGROUND])) for e in events)
    negative = _negative(" , ".join([bed, *sources]), p, info["family_ids"], info["cleaned"], info["extra"])
    if sources:
        negative = ", ".join(t for t in _neg_split(negative) if t not in _EVENT_HOSTILE_NEGATIVE)
    negative = _fit(negative)
    names = tuple(EVENT_LABELS[e] for e in events)
    log.debug("layered ambient prompts: bed=%r sources=%r", bed, names)
    return LayeredPrompts(bed=bed, sources=sources, negative=negative, source_names=names)


def explain_layered(caption: str, preset: str = DEFAULT_PRESET, extra: str = "") -> dict:
    """Report how a caption was split into a bed and sources, for logging and the CLI.

    Args:
        caption: Image caption.
        preset: One of ``PRESET_NAMES``.
        extra: Optional user detail text.

    Returns:
        ``{"families", "extra_families", "bed_textures", "events", "event_labels", "preset"}``: family
        names matched in the caption and (for events it names) in ``extra``, the family textures on the
        bed, every candidate source event in order (up to ``MAX_LAYER_SOURCES``) with its label, and
        the preset name.
    """
    info = _analyse_layers(caption, preset, extra)
    return {
        "families": [FAMILIES[fi].name for fi in info["family_ids"]],
        "extra_families": [FAMILIES[fi].name for fi in info["extra_family_ids"]],
        "bed_textures": list(info["textures"]),
        "events": list(info["events"]),
        "event_labels": [EVENT_LABELS[e] for e in info["events"]],
        "preset": info["preset"].name,
    }


def source_prompts(layered: LayeredPrompts, slots: int = 3) -> list[str]:
    """The source prompts for ``slots`` outputs: the distinct sources first, then a faint variant of the bed
    (its first phrase, "distant, faint, quiet background") in every slot the scene has no source for, so a
    sampler connected to an unused output still makes a quiet layer that mixes in unnoticed."""
    faint = f"{layered.bed.split(',')[0]}, distant, faint, quiet background"
    return list(layered.sources[:slots]) + [faint] * (slots - len(layered.sources[:slots]))
