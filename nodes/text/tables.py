"""The prompt builder's data: style presets, scene families (caption words -> the sounds they imply), which sounds
are intermittent events, extra bed textures and the base negative prompt.

Pure data, standard library only. Edit these tables to teach the builder a new scene or sound; the logic that reads
them lives in clean.py, scene.py, layered.py and prompt.py. Tests in tests/test_prompt.py keep the tables
consistent (every family matchable, every event label naming a known source phrase, every family with a bed).
"""

from __future__ import annotations

from dataclasses import dataclass


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
    murmur is wanted; ``weak`` families count only when nothing else matched. ``setting`` (indoor, outdoor,
    underwater, vehicle, space or "" when it depends) and ``replaces`` (families this one overrides when both are
    named) come from the scene table (scenes.json) for its places and objects."""

    name: str
    triggers: tuple
    sources: tuple
    voices: bool = False
    weak: bool = False
    setting: str = ""
    replaces: tuple = ()


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

# --- layered mode: the words of bed and source prompts ---------------------------
BED_STEADY = "steady continuous background ambience"
SOURCE_FLAVOUR = ("occasional", "distinct isolated sound")
SOURCE_BACKGROUND = "quiet background"
# Source prompts take a preset's style but not its bed words ("seamless loopable background ambience").
SOURCE_STYLE: dict[str, tuple[str, ...]] = {
    "natural field recording": ("natural field recording",),
    "calm meditation bed": ("soft", "gentle"),
    "cinematic atmosphere": ("cinematic", "wide stereo"),
    "game background loop": ("clean sound effect",),
    "cozy interior": ("warm", "close"),
}
# Preset negative terms that would fight a generation of isolated events; left out of the shared
# negative whenever there are sources.
EVENT_HOSTILE_NEGATIVE = frozenset({"distinct events", "sudden sounds", "silence"})
# Main nouns of event labels that differ from the label's last word ("birdsong" is a bird).
LABEL_NOUN_ALIASES = {"birdsong": "bird", "cowbell": "bell"}
