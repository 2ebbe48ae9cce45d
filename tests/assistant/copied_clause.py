"""A copied clause for issue 16's first-writer tests: a chronicle, a snippet that copies 15 of its
words (under half of the sentence, no number: kept at intake), and notes that outrank the chronicle
for a question about the copy, so an answer's sources hold the copy but not its origin."""
from __future__ import annotations

CHRONICLE = ("During the long winter of the siege, the monks of Saint Aldric kept the abbey's bees alive by feeding "
             "them a syrup of boiled heather honey and crushed juniper berries in the cellar beneath the old refectory.")
# 32 words, of which the 15 from "by feeding" to "in the" are the chronicle's.
COPY = ("When the frost comes early, beekeepers in the upper valley still keep their hives going by feeding them "
        "a syrup of boiled heather honey and crushed juniper berries in the dark months.")
QUESTION = "When the frost comes early, how do beekeepers in the upper valley keep their hives going?"
# Paragraphs, not notes (over 60 words each): an answer then reads five sources, not forty.
VALLEY_HIVES = [
    ("Beekeepers in the upper valley wrap their hives in straw mats when the frost comes early, and they "
     "move the colonies into the lee of the stone walls so the north wind cannot reach the entrances. An "
     "early frost kills the last flowers of the high meadows, and a colony that has not stored enough "
     "honey by then has to be fed or it starves before spring. In the upper valley the hives stand on "
     "wooden benches above the snow line of the orchards. When the frost comes early the beekeepers narrow"
     " each hive entrance with a wooden block, which keeps mice out and the warmth in, and they check the "
     "weight of every hive by lifting its back edge."),
    ("An early frost in the upper valley is a hard time for beekeepers: the heather has not finished "
     "flowering, the bees cluster before their stores are full, and a wet autumn can bring mould into the "
     "hives. Old beekeepers keep a spare set of dry quilts to swap into the hives after the first cold "
     "nights. The beekeepers' association of the upper valley meets each October in the village hall to "
     "plan for the frost. Members lend each other hive scales and insulation boards, and the older "
     "beekeepers teach the younger ones how to judge from the sound of a hive whether its colony is "
     "healthy going into winter."),
    ("Keeping hives going through a cold year in the upper valley means watching the bees closely. On "
     "frosty mornings the beekeepers look for dead bees at the entrances, clear snow from the landing "
     "boards, and tilt the hives forward a little so that water running down the walls drains out instead "
     "of pooling inside. Frost hollows form at the bottom of the upper valley, so the beekeepers there "
     "place their hives halfway up the slopes where the cold air does not settle. Hives kept in the "
     "hollows lose more colonies in early frosts than hives on the slopes, according to the records the "
     "valley's beekeepers have kept for decades."),
    ("Most beekeepers in the upper valley leave their hives heavy with honey in autumn rather than "
     "harvesting the last frames, because an early frost can come before the colonies have stored enough "
     "to last until the willows flower. A hive that feels light in October is given frames of honey saved "
     "from a stronger colony. Mice, woodpeckers and damp are the three enemies the upper valley's "
     "beekeepers name when the frost comes early. Mesh guards go over the entrances, chicken wire around "
     "the hives that woodpeckers have found, and a slate on each roof keeps the rain off the wooden lids "
     "through the long wet weeks of November."),
    ("A beekeeper from the upper valley described her winter routine: she visits the hives once a week "
     "without opening them, listens at the walls with a length of hose, and only lifts a lid on a mild "
     "sunny day. Opening a hive in the frost breaks the winter cluster, and the bees may not manage to "
     "form it again. The valley's beekeeping records go back to the eighteen-nineties. They show that the "
     "colonies of the upper valley survive frosts best when they are left undisturbed, kept dry and "
     "sheltered from the wind, and when the beekeepers have left them a generous store of their own honey "
     "at the end of the summer."),
]
