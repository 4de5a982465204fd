"""A word-level tokenizer built in-process, so test fixtures and the ``random-clip`` family need no download.

Real CLIP ships a 49k-entry BPE vocabulary that only comes from the Hub. Models whose weights are random (the
tiny test CLIP, the ``random-clip:*`` benchmark presets) gain nothing from it: what they need is a tokenizer
that behaves like CLIP's *mechanically* -- lowercases, splits words, wraps each text in BOS/EOS, pads and
truncates -- so that the text tower's EOS pooling, batching and truncation paths run exactly as in production.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
BOS_TOKEN = "[BOS]"
EOS_TOKEN = "[EOS]"

# The ids are fixed by position. EOS must NOT be 2: CLIP's text tower treats ``eos_token_id == 2`` as the
# legacy (pre-#24773) config and pools at ``argmax(input_ids)`` instead of at the first EOS, which would pool
# at whatever word has the highest id.
PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN)

# Common English words, biased towards what people type into an image search box. The exact list only
# matters in that distinct words get distinct ids (so different queries give different vectors).
_COMMON_WORDS_TEXT = """
    a an the and or but of in on at to from by with without for over under above below near behind between
    into out up down off through across around inside outside next front back top bottom left right middle
    is are was were be been being has have had do does did can could will would should may might must this
    that these those there here it its i me my we our you your he him his she her they them their what which
    who whom whose where when why how all any both each few more most other some such no nor not only own
    same so than too very just one two three four five six seven eight nine ten many several first second
    last new old young big small large little long short tall wide narrow high low red orange yellow green
    blue purple pink brown black white gray grey golden silver dark light bright colorful pale hot cold warm
    cool wet dry clean dirty empty full open closed busy quiet happy sad beautiful pretty ugly cute funny
    modern ancient wooden metal glass plastic stone man woman boy girl child children kid kids
    baby person people family friend friends group crowd team father mother son daughter brother sister
    couple bride groom player players student teacher worker dog dogs puppy cat cats kitten bird birds horse
    horses cow cows sheep goat pig chicken duck fish bear elephant giraffe zebra lion tiger monkey rabbit
    mouse deer fox wolf snake turtle frog insect bee butterfly spider animal animals pet pets car cars truck
    bus train plane airplane boat ship bicycle bike motorcycle scooter taxi vehicle road street highway
    bridge tunnel traffic sign light parking station airport harbor port house home building buildings tower
    church castle city town village skyline office school shop store market restaurant cafe bar hotel
    hospital kitchen bedroom bathroom room living garden yard garage door window wall floor roof stairs
    fence gate table chair sofa couch bed desk shelf lamp clock mirror tv television computer laptop phone
    screen keyboard camera book books paper picture painting photo cup mug glass bottle plate bowl fork
    knife spoon food meal breakfast lunch dinner pizza sandwich burger cake bread cheese fruit apple banana
    orange vegetables salad soup coffee tea wine beer water drink ice cream chocolate cookie egg meat rice
    pasta tree trees flower flowers grass leaf leaves forest wood woods park field farm mountain mountains
    hill hills valley river lake sea ocean beach sand wave waves island rock rocks cliff desert snow ice
    rain cloud clouds sky sun sunset sunrise moon star stars night day morning evening afternoon winter
    spring summer autumn fall weather storm fog shirt dress hat cap shoes jacket coat jeans glasses bag
    umbrella ball kite frisbee skateboard surfboard skis snowboard racket bat toy toys game guitar piano
    music sitting standing walking running riding eating drinking playing holding looking smiling laughing
    sleeping flying swimming jumping reading writing talking watching waiting working cooking driving
    dancing singing climbing carrying throwing catching wearing lying posing sits stands walks runs rides
    eats drinks plays holds looks smiles sleeps flies swims jumps photo photograph image picture shot view
    portrait landscape selfie screenshot document receipt text map chart diagram drawing sketch
    cartoon logo birthday wedding party holiday vacation trip travel christmas concert festival sports match
    race
"""
COMMON_WORDS: tuple[str, ...] = tuple(_COMMON_WORDS_TEXT.split())


def build_offline_tokenizer(
    words: Iterable[str] | None = None, *, model_max_length: int = 77
) -> PreTrainedTokenizerFast:
    """Return a CLIP-shaped word-level tokenizer over ``words`` (default :data:`COMMON_WORDS`).

    Lowercases, splits on whitespace and punctuation, maps unknown words to ``[UNK]``, wraps every text as
    ``[BOS] ... [EOS]`` and pads with ``[PAD]`` (ids fixed by :data:`PAD_ID` ... :data:`EOS_ID`; configure the
    text tower with the same ids). Truncation keeps room for BOS/EOS, so even a truncated text ends in EOS --
    which CLIP's pooling relies on.
    """
    vocab: dict[str, int] = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for word in COMMON_WORDS if words is None else words:
        word = word.lower()
        if word and word not in vocab:
            vocab[word] = len(vocab)

    backend = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    backend.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A {EOS_TOKEN}",
        pair=f"{BOS_TOKEN} $A {EOS_TOKEN} $B {EOS_TOKEN}",
        special_tokens=[(BOS_TOKEN, BOS_ID), (EOS_TOKEN, EOS_ID)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        model_max_length=model_max_length,
        padding_side="right",
    )
