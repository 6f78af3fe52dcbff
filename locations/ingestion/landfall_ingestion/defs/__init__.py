"""The defs folder dg requires of a project. Landfall declares nothing here: zones live in
landing/zones/ (`dg scaffold defs orchestration.components.landing_zones.landing_zone <name>`
writes them there), Snowpark models in ml/models/, dbt models in transforms/."""
