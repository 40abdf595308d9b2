"""Relations registered without a property module of their own (a plugin's, a user's, a toy in a
test): each gets the same property as the built-in ones, here."""

from linconv.relations import relations
from properties.support import relation_property

for _relation in relations():
    if not _relation.property_module:
        globals()[f"test_{_relation.name}"] = relation_property(_relation.name)
